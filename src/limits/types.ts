// The `limits` load option: its keys, their checks, and how a pyisolate.yaml may only narrow them. Pure.

import { ConfigError } from "../errors.js";

/** What one extension's process tree may use; every key is optional and unset means unbounded. */
export interface ResourceLimits {
  /** Resident memory of the whole process tree, in MiB (one process also gets it as RLIMIT_DATA). */
  memoryMiB?: number;
  /** CPU time of the whole process tree, in seconds (one process also gets it as RLIMIT_CPU). */
  cpuSeconds?: number;
  /** Processes in the tree, the extension's own included. */
  pids?: number;
  /** Open descriptors of the whole tree (one process also gets it as RLIMIT_NOFILE). */
  openFiles?: number;
  /** Bytes on disk of the private HOME and tmp together, in MiB (one file also gets it as RLIMIT_FSIZE). */
  diskMiB?: number;
}

export type LimitName = keyof ResourceLimits;

/** One source of truth for the keys: the validator, the watchdog and the docs walk this list. */
export const LIMIT_NAMES = [
  "memoryMiB",
  "cpuSeconds",
  "pids",
  "openFiles",
  "diskMiB",
] as const satisfies readonly LimitName[];

/** Least values that still let the guest runtime start (an interpreter, its socket and its pinned descriptors). */
export const LIMIT_FLOORS: Readonly<Record<LimitName, number>> = {
  memoryMiB: 64,
  cpuSeconds: 1,
  pids: 1,
  openFiles: 32,
  diskMiB: 1,
};
/** Upper bounds that keep every value an exact integer in bytes and in rlimit units. */
const LIMIT_CEILING = 2 ** 31;

/** Pure: a checked copy of `limits` (undefined when absent); a ConfigError names `limits.<key>`. */
export function validateResourceLimits(value: unknown, file?: string): ResourceLimits | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ConfigError("limits must be an object such as { memoryMiB: 512, pids: 64 }", { key: "limits", file });
  }
  const out: ResourceLimits = {};
  for (const [key, raw] of Object.entries(value)) {
    if (!(LIMIT_NAMES as readonly string[]).includes(key)) {
      throw new ConfigError(`unknown option "limits.${key}" (known: ${LIMIT_NAMES.join(", ")})`, {
        key: `limits.${key}`,
        file,
      });
    }
    if (raw === undefined) continue;
    const name = key as LimitName;
    const floor = LIMIT_FLOORS[name];
    if (typeof raw !== "number" || !Number.isInteger(raw) || raw < floor || raw > LIMIT_CEILING) {
      throw new ConfigError(`limits.${key} must be an integer from ${floor} to ${LIMIT_CEILING}`, {
        key: `limits.${key}`,
        file,
      });
    }
    out[name] = raw;
  }
  return out;
}

/**
 * Pure: the limits that apply when the host's code gives `fromCode` and the extension's pyisolate.yaml `fromFile`:
 * per key the smaller one. The file can set a limit the code left open, or tighten one, never loosen one.
 */
export function narrowLimits(
  fromCode: ResourceLimits | undefined,
  fromFile: ResourceLimits | undefined,
): ResourceLimits | undefined {
  if (!fromCode && !fromFile) return undefined;
  const out: ResourceLimits = {};
  for (const name of LIMIT_NAMES) {
    const values = [fromCode?.[name], fromFile?.[name]].filter((v): v is number => v !== undefined);
    if (values.length) out[name] = Math.min(...values);
  }
  return out;
}

/** Pure: whether any limit is set. */
export function hasLimits(limits: ResourceLimits | undefined): limits is ResourceLimits {
  return limits !== undefined && LIMIT_NAMES.some((name) => limits[name] !== undefined);
}
