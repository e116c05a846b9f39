// manager.prune(): the venv root pruned of what none of the manager's extensions, pools or shared runtimes uses.

import { ConfigError } from "../errors.js";
import type { PruneSkip } from "./classify.js";
import { applyPrune, planPrune, type PlannedRemoval } from "./plan.js";

export interface ManagerPruneOptions {
  /** More extension names to keep, besides those loaded (or loading) in this manager: ones the application loads later. */
  keep?: readonly string[];
  /**
   * Keep any environment built or loaded (by any process) within this many days. Default 30: a venv root shared
   * with another application, or an extension this one loads only now and then, keeps what is in use. 0: age
   * does not protect anything.
   */
  unusedForDays?: number;
  /** List what would go, remove nothing. Default false. */
  dryRun?: boolean;
}

export interface PruneResult {
  venvRoot: string;
  dryRun: boolean;
  /** What was removed (or, in a dry run, would be), with sizes. */
  removed: PlannedRemoval[];
  /** What was left, and why: not pyisolate's, in use, being built, used recently. */
  skipped: PruneSkip[];
  bytes: number;
}

export const DEFAULT_UNUSED_DAYS = 30;

/** What this manager uses: the names it has loaded, is loading or pools, and its shared runtimes. */
export interface InUse {
  names: Iterable<string>;
  shared: readonly string[];
}

/** Checks the options (code, but typed at run time too), plans the prune and, unless a dry run, carries it out. */
export async function pruneManaged(
  venvRoot: string,
  inUse: InUse,
  options: ManagerPruneOptions = {},
): Promise<PruneResult> {
  const days = options.unusedForDays ?? DEFAULT_UNUSED_DAYS;
  if (typeof days !== "number" || !Number.isFinite(days) || days < 0) {
    throw new ConfigError(`unusedForDays must be a number of days, 0 or more, got ${JSON.stringify(days)}`, {
      key: "unusedForDays",
    });
  }
  if (options.keep !== undefined && (!Array.isArray(options.keep) || options.keep.some((n) => typeof n !== "string"))) {
    throw new ConfigError("keep must be a list of extension names", { key: "keep" });
  }
  const keep = [...inUse.names, ...(options.keep ?? [])];
  const plan = await planPrune({ venvRoot, keep, keepShared: inUse.shared, unusedForDays: days });
  const dryRun = options.dryRun === true;
  const removed = dryRun ? plan.remove : await applyPrune(plan);
  return {
    venvRoot: plan.venvRoot,
    dryRun,
    removed,
    skipped: plan.skipped,
    bytes: removed.reduce((sum, r) => sum + r.bytes, 0),
  };
}
