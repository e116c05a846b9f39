// Pure: which worker of a pool takes the next call (the least busy one, ties in turn).

import type { ExtensionState } from "../types/events.js";

/** What the choice looks at for each worker. */
export interface WorkerLoad {
  state: ExtensionState;
  inFlight: number;
}

/**
 * The worker for the next call, and the cursor after it. Ready workers first; when none is ready, one that is
 * restarting (its restart policy queues or rejects the call); none of either: undefined. Among them the fewest calls
 * in flight; ties go to the first at or after `cursor`, so that idle workers take turns.
 */
export function pickWorker(
  workers: readonly WorkerLoad[],
  cursor: number,
): { index: number; cursor: number } | undefined {
  const n = workers.length;
  for (const wanted of ["ready", "restarting"] as const) {
    let best: number | undefined;
    for (let step = 0; step < n; step++) {
      const i = (cursor + step) % n;
      const w = workers[i]!;
      if (w.state !== wanted) continue;
      if (best === undefined || w.inFlight < workers[best]!.inFlight) best = i;
    }
    if (best !== undefined) return { index: best, cursor: (best + 1) % n };
  }
  return undefined;
}

/** Pure: the state a pool shows for its workers' states (any ready one makes it ready). */
export function poolState(states: readonly ExtensionState[]): ExtensionState {
  if (states.includes("ready")) return "ready";
  if (states.includes("restarting") || states.includes("starting")) return "restarting";
  if (states.includes("stopping")) return "stopping";
  if (states.every((s) => s === "stopped")) return "stopped";
  return "crashed";
}
