// Plans a prune of a venv root and carries it out: what no kept environment uses, minus what is busy, with sizes.

import { lstat, rm } from "node:fs/promises";
import path from "node:path";
import { acquireLockFile, isDead, readOwner } from "../env/lock.js";
import { statePath } from "../env/fingerprint.js";
import { lockPath } from "../env/swap.js";
import { diskUsage } from "../limits/disk-usage.js";
import { SHARED_FOLDER } from "../prepare-shared-runtime.js";
import { classify, type PruneSkip, type PruneTarget } from "./classify.js";
import { processPaths, userOf } from "./live.js";
import { scanRoot } from "./scan.js";

export interface PruneOptions {
  venvRoot: string;
  /** Extension names whose venv, state and cache stay (the loaded and configured ones). */
  keep?: readonly string[];
  /** Shared runtime names (the manager's `sharedRuntimes` keys) whose layer under `.shared/` stays. */
  keepShared?: readonly string[];
  /**
   * Keep an environment used (built or loaded: its state file's mtime, see markUsed) within this many days, kept
   * or not. Undefined: age does not matter. Crashed builds' leftovers have no use to date and go whatever their age.
   */
  unusedForDays?: number;
  /** The clock, for tests (ms since the epoch). */
  now?: number;
}

export interface PlannedRemoval extends PruneTarget {
  /** Bytes on disk (st_blocks); a file hard-linked into a cache counts in both. */
  bytes: number;
  /** The root that holds it: venvRoot or venvRoot/.shared. */
  root: string;
}

export interface PrunePlan {
  venvRoot: string;
  remove: PlannedRemoval[];
  skipped: PruneSkip[];
  bytes: number;
}

/** Why `target`'s environment is busy: a live build holds its lock, or a running process uses its venv. */
async function busy(root: string, target: PruneTarget, users: Map<number, string[]>): Promise<string | undefined> {
  const owner = await readOwner(lockPath(root, target.name));
  if (typeof owner === "object" && !isDead(owner)) return `being built by pid ${owner.pid}`;
  const pid = userOf(path.join(root, target.name), users);
  return pid === undefined ? undefined : `in use by pid ${pid}`;
}

/** When `name`'s environment under `root` was last built or loaded: its state file's mtime, else its folder's. */
async function lastUsed(root: string, name: string): Promise<number | undefined> {
  const times = await Promise.all(
    [statePath(root, name), path.join(root, name)].map((p) =>
      lstat(p).then(
        (s) => s.mtimeMs,
        () => undefined,
      ),
    ),
  );
  return times.find((t) => t !== undefined);
}

/** Why `target` is too recently used to go, under `options.unusedForDays`. */
async function recentUse(root: string, target: PruneTarget, options: PruneOptions): Promise<string | undefined> {
  if (options.unusedForDays === undefined || target.kind === "build") return undefined;
  const used = await lastUsed(root, target.name);
  const days = ((options.now ?? Date.now()) - (used ?? 0)) / 86_400_000;
  return days < options.unusedForDays ? `used ${days.toFixed(1)} days ago, within ${options.unusedForDays}` : undefined;
}

/** What a prune would remove, read without changing anything. */
export async function planPrune(options: PruneOptions): Promise<PrunePlan> {
  const venvRoot = path.resolve(options.venvRoot);
  const users = await processPaths();
  const roots: [string, Set<string>][] = [
    [venvRoot, new Set(options.keep ?? [])],
    [path.join(venvRoot, SHARED_FOLDER), new Set(options.keepShared ?? [])],
  ];
  const remove: PlannedRemoval[] = [];
  const skipped: PruneSkip[] = [];
  for (const [root, keep] of roots) {
    const found = classify(await scanRoot(root), keep);
    skipped.push(...found.skipped);
    for (const target of found.targets) {
      const reason = (await recentUse(root, target, options)) ?? (await busy(root, target, users));
      if (reason) skipped.push({ path: target.path, reason });
      else
        remove.push({
          ...target,
          root,
          bytes: (await diskUsage(target.path, Number.MAX_SAFE_INTEGER)).bytes + (await selfSize(target.path)),
        });
    }
  }
  return { venvRoot, remove, skipped, bytes: remove.reduce((sum, r) => sum + r.bytes, 0) };
}

/** The entry's own blocks (diskUsage counts what is below a folder, not the folder or a file itself). */
async function selfSize(p: string): Promise<number> {
  return ((await lstat(p).catch(() => undefined))?.blocks ?? 0) * 512;
}

/**
 * Removes what `plan` lists, each environment under its build lock (a build that starts meanwhile waits, one that
 * started since the plan is left alone). The state file goes first: an interrupted prune leaves a venv that the next
 * load rebuilds, never one it trusts. rm() unlinks symlinks and never follows them.
 */
export async function applyPrune(plan: PrunePlan): Promise<PlannedRemoval[]> {
  const order: Record<PruneTarget["kind"], number> = { state: 0, venv: 1, build: 2, cache: 3, lock: 4 };
  const groups = new Map<string, PlannedRemoval[]>();
  for (const item of plan.remove)
    groups.set(`${item.root}\0${item.name}`, [...(groups.get(`${item.root}\0${item.name}`) ?? []), item]);
  const removed: PlannedRemoval[] = [];
  for (const items of groups.values()) {
    const { root, name } = items[0]!;
    const owner = await readOwner(lockPath(root, name));
    if (typeof owner === "object" && !isDead(owner)) continue;
    const release = await acquireLockFile(lockPath(root, name));
    try {
      for (const item of items.filter((i) => i.kind !== "lock").sort((a, b) => order[a.kind] - order[b.kind])) {
        await rm(item.path, { recursive: true, force: true });
        removed.push(item);
      }
    } finally {
      await release();
    }
    removed.push(...items.filter((i) => i.kind === "lock"));
  }
  return removed;
}
