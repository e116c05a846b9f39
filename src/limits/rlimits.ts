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
export function rlimitsFor(limits: ResourceLimits, nprocSlack?: number): Record<string, [number, number]> {
  const out: Record<string, [number, number]> = {};
  if (limits.pids !== undefined && nprocSlack !== undefined)
    out.RLIMIT_NPROC = [limits.pids + nprocSlack, limits.pids + nprocSlack];
  if (limits.memoryMiB !== undefined) out.RLIMIT_DATA = [limits.memoryMiB * MIB, limits.memoryMiB * MIB];
  if (limits.cpuSeconds !== undefined) out.RLIMIT_CPU = [limits.cpuSeconds, limits.cpuSeconds + 1];
  if (limits.openFiles !== undefined) out.RLIMIT_NOFILE = [limits.openFiles, limits.openFiles];
  if (limits.diskMiB !== undefined) out.RLIMIT_FSIZE = [limits.diskMiB * MIB, limits.diskMiB * MIB];
  return out;
}

/** Where the guest runs, for RLIMIT_NPROC (see `nprocSlack`). */
export interface NprocScope {
  /** The guest runs in a user namespace of its own (bwrap's --unshare-user). */
  ownUserNamespace: boolean;
  uid: number | undefined;
  /** `os.release()`. */
  kernelRelease: string;
  cpus: number;
}

/**
 * Pure: how many tasks RLIMIT_NPROC allows beyond `pids`, or undefined where it cannot bound one extension. Since
 * Linux 5.14 the kernel counts a uid's tasks per user namespace (ucounts), so inside bwrap's own namespace the count
 * holds only the extension's tasks; anywhere else it holds every process of the uid, the host's included. Root's
 * (kuid 0) forks are never checked. Threads count as tasks: the slack covers bwrap's pid 1, the threads libraries
 * start per core (BLAS, torch: up to two per core) and the runtime's own. A fork loop then stops at the kernel, at
 * pids + slack, before the watchdog's next sample.
 */
export function nprocSlack(scope: NprocScope): number | undefined {
  if (!scope.ownUserNamespace || scope.uid === undefined || scope.uid === 0) return undefined;
  const [major = 0, minor = 0] = scope.kernelRelease.split(".").map((part) => Number.parseInt(part, 10));
  if (major < 5 || (major === 5 && minor < 14)) return undefined;
  return 1 + 2 * scope.cpus + 32;
}

/** Pure: the environment entry for `rlimitsFor`, or none when no limit maps to an rlimit. */
export function rlimitsEnv(limits: ResourceLimits | undefined, nprocSlackTasks?: number): Record<string, string> {
  const rlimits = limits ? rlimitsFor(limits, nprocSlackTasks) : {};
  return Object.keys(rlimits).length ? { [RLIMITS_ENV]: JSON.stringify(rlimits) } : {};
}

/**
 * Pure: the limit error an exit stands for, if any. SIGXCPU is the kernel's word that RLIMIT_CPU was reached; the
 * guest ignores SIGXFSZ (Python does), so a file past RLIMIT_FSIZE is an OSError inside, not an exit.
 */
export function limitErrorForExit(
  extension: string,
  exit: ExitInfo,
  limits: ResourceLimits | undefined,
): ExtensionLimitError | undefined {
  if (exit.signal === "SIGXCPU" && limits?.cpuSeconds !== undefined) {
    return new ExtensionLimitError(extension, {
      limit: "cpuSeconds",
      value: limits.cpuSeconds,
      max: limits.cpuSeconds,
      mechanism: "rlimit",
    });
  }
  return undefined;
}
