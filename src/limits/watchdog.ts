// The host's last layer: samples an extension's process tree and private folders, and stops it past a limit.

import { ExtensionLimitError } from "../errors.js";
import { diskUsage } from "./disk-usage.js";
import { sampleTree, type TreeSample } from "./proc-tree.js";
import type { LimitName, ResourceLimits } from "./types.js";

/** How often the tree is sampled: often enough to catch a fork loop early, rare enough to cost nothing. */
export const WATCHDOG_INTERVAL_MS = 250;
/** The private folders are walked every this many samples: a walk costs more than reading /proc. */
const DISK_EVERY = 4;
const MIB = 1024 * 1024;

/** What one sample measured, in the units of `ResourceLimits`. */
export type Usage = Partial<Record<LimitName, number>>;

/** Pure: a tree sample in limit units. `overhead` processes (the supervisor, bwrap) are the host's, not counted as pids. */
export function usageOf(sample: TreeSample, overhead: number): Usage {
  return {
    memoryMiB: Math.ceil(sample.rssBytes / MIB),
    cpuSeconds: Math.round(sample.cpuSeconds * 100) / 100,
    pids: Math.max(0, sample.processes - overhead),
    openFiles: sample.openFiles,
  };
}

/** Pure: the first limit `usage` passes, or undefined. */
export function firstExceeded(
  usage: Usage,
  limits: ResourceLimits,
): { limit: LimitName; value: number; max: number } | undefined {
  for (const limit of ["memoryMiB", "pids", "cpuSeconds", "openFiles", "diskMiB"] as const) {
    const max = limits[limit];
    const value = usage[limit];
    if (max !== undefined && value !== undefined && value > max) return { limit, value, max };
  }
  return undefined;
}

/** Pure: how many processes of a tree are the sandbox's own: bwrap's monitor and its pid 1, or the guest's supervisor. */
export function sandboxOverhead(backend: string): number {
  return backend.startsWith("bwrap") ? 2 : 1;
}

export interface WatchdogInput {
  extension: string;
  /** The process the host spawned (the group leader): the tree below it is the extension's. */
  root: number;
  /** How many processes of the tree are the sandbox's own (bwrap's two, or the guest's supervisor). */
  overhead: number;
  /** Host folders that count against `diskMiB` (the private HOME, and tmp where it is on the host's disk). */
  folders: readonly string[];
  limits: ResourceLimits;
  intervalMs?: number;
  /** Called once, with the error to stop the extension with. */
  onExceeded(error: ExtensionLimitError): void;
}

/** Starts sampling; the returned function stops it (idempotent). Timers are unref'd: they never keep the host alive. */
export function startWatchdog(input: WatchdogInput): () => void {
  let stopped = false;
  let busy = false;
  let round = 0;
  const watchDisk = input.limits.diskMiB !== undefined && input.folders.length > 0;
  const watchTree = ["memoryMiB", "pids", "cpuSeconds", "openFiles"].some(
    (k) => input.limits[k as LimitName] !== undefined,
  );
  const stop = () => {
    stopped = true;
    clearInterval(timer);
  };
  const check = async () => {
    if (stopped || busy) return;
    busy = true;
    try {
      const usage: Usage = {};
      if (watchTree) {
        const sample = sampleTree(input.root, {
          rss: input.limits.memoryMiB !== undefined,
          openFiles: input.limits.openFiles !== undefined,
          hostLevels: input.overhead,
          openFilesEach: input.limits.openFiles,
        });
        if (sample === undefined) return stop(); // the process is gone: its exit handler reports it
        Object.assign(usage, usageOf(sample, input.overhead));
      }
      if (watchDisk && round++ % DISK_EVERY === 0) {
        let bytes = 0;
        for (const folder of input.folders) bytes += (await diskUsage(folder)).bytes;
        usage.diskMiB = Math.ceil(bytes / MIB);
      }
      const over = firstExceeded(usage, input.limits);
      if (over && !stopped) {
        stop();
        input.onExceeded(new ExtensionLimitError(input.extension, { ...over, mechanism: "watchdog" }));
      }
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void check(), input.intervalMs ?? WATCHDOG_INTERVAL_MS);
  timer.unref();
  return stop;
}
