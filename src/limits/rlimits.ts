// Pure: the kernel's per-process limits the guest sets on itself before extension code runs, and what their signals mean.

import { ExtensionLimitError, type ExitInfo } from "../errors.js";
import type { ResourceLimits } from "./types.js";

/** Carries the rlimits to bootstrap.py (popped there before anything of the extension runs). A host switch. */
export const RLIMITS_ENV = "PYISOLATE_RLIMITS";
const MIB = 1024 * 1024;

/**
 * Pure: resource name -> [soft, hard] for Python's `resource.setrlimit`. RLIMIT_CPU's hard limit is one second past
 * the soft one, so that the kernel's SIGXCPU (which the host reads as this limit) comes before its SIGKILL.
 */
export function rlimitsFor(limits: ResourceLimits): Record<string, [number, number]> {
  const out: Record<string, [number, number]> = {};
  if (limits.memoryMiB !== undefined) out.RLIMIT_DATA = [limits.memoryMiB * MIB, limits.memoryMiB * MIB];
  if (limits.cpuSeconds !== undefined) out.RLIMIT_CPU = [limits.cpuSeconds, limits.cpuSeconds + 1];
  if (limits.openFiles !== undefined) out.RLIMIT_NOFILE = [limits.openFiles, limits.openFiles];
  if (limits.diskMiB !== undefined) out.RLIMIT_FSIZE = [limits.diskMiB * MIB, limits.diskMiB * MIB];
  return out;
}

/** Pure: the environment entry for `rlimitsFor`, or none when no limit maps to an rlimit. */
export function rlimitsEnv(limits: ResourceLimits | undefined): Record<string, string> {
  const rlimits = limits ? rlimitsFor(limits) : {};
  return Object.keys(rlimits).length ? { [RLIMITS_ENV]: JSON.stringify(rlimits) } : {};
}

/**
 * Pure: the limit error an exit stands for, if any. SIGXCPU is the kernel's word that RLIMIT_CPU was reached; the
 * guest ignores SIGXFSZ (Python does), so a file past RLIMIT_FSIZE is an OSError inside, not an exit.
 */
export function limitErrorForExit(extension: string, exit: ExitInfo, limits: ResourceLimits | undefined): ExtensionLimitError | undefined {
  if (exit.signal === "SIGXCPU" && limits?.cpuSeconds !== undefined) {
    return new ExtensionLimitError(extension, { limit: "cpuSeconds", value: limits.cpuSeconds, max: limits.cpuSeconds, mechanism: "rlimit" });
  }
  return undefined;
}
