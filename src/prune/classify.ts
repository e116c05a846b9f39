// Pure: which entries of a venv root pyisolate made, and which of them no kept environment uses.

import path from "node:path";

/** What an entry is to pyisolate: a venv, a crashed build's leftover, an install cache, a state file, a lock. */
export type PruneKind = "venv" | "build" | "cache" | "state" | "lock";

/** One entry of a root as readdir (no symlink followed) and a pyvenv.cfg probe saw it. */
export interface RootEntry {
  name: string;
  type: "dir" | "file" | "symlink" | "other";
  /** A directory holding a regular pyvenv.cfg (lstat, not followed). */
  looksLikeVenv?: boolean;
}

/** What one root holds besides its entries: the names under `.state/` (without .json) and under `.cache/`. */
export interface RootListing {
  root: string;
  entries: RootEntry[];
  stateNames: string[];
  cacheNames: string[];
}

export interface PruneTarget {
  kind: PruneKind;
  /** The environment it belongs to. */
  name: string;
  path: string;
}

export interface PruneSkip {
  path: string;
  reason: string;
}

const LEFTOVER = /^\.(build|old)-(.+)-[0-9a-f]{12}$/;
const LOCK = /^\.lock-(.+)$/;
/** The dot folders pyisolate keeps in a root; listed by their own rules, never removed whole. */
const OWN_FOLDERS = new Set([".state", ".cache", ".shared"]);

/**
 * The targets in one root: every venv, state file, cache and lock of a name not in `keep`, and every leftover of a
 * crashed build (no environment uses those). Anything pyisolate did not make (no state file and no pyvenv.cfg, a
 * symlink, a file) is skipped with the reason: prune deletes only its own work.
 */
export function classify(
  listing: RootListing,
  keep: ReadonlySet<string>,
): { targets: PruneTarget[]; skipped: PruneSkip[] } {
  const { root, entries } = listing;
  const states = new Set(listing.stateNames);
  const targets: PruneTarget[] = [];
  const skipped: PruneSkip[] = [];
  for (const entry of entries) {
    const at = path.join(root, entry.name);
    const leftover = LEFTOVER.exec(entry.name);
    const lock = LOCK.exec(entry.name);
    if (OWN_FOLDERS.has(entry.name)) continue;
    if (leftover) targets.push({ kind: "build", name: leftover[2]!, path: at });
    else if (lock) {
      // A lock file's draft (".lock-x.<pid>-<hex>.tmp") belongs to whoever is taking the lock right now.
      if (entry.type === "file" && !lock[1]!.endsWith(".tmp") && !keep.has(lock[1]!))
        targets.push({ kind: "lock", name: lock[1]!, path: at });
    } else if (entry.name.startsWith(".")) skipped.push({ path: at, reason: "not made by pyisolate" });
    else if (keep.has(entry.name)) continue;
    else if (entry.type === "dir" && (states.has(entry.name) || entry.looksLikeVenv))
      targets.push({ kind: "venv", name: entry.name, path: at });
    else
      skipped.push({
        path: at,
        reason: entry.type === "symlink" ? "a symlink, not a venv pyisolate made" : "not a venv pyisolate made",
      });
  }
  for (const name of listing.stateNames) {
    if (!keep.has(name)) targets.push({ kind: "state", name, path: path.join(root, ".state", `${name}.json`) });
  }
  for (const name of listing.cacheNames) {
    if (!keep.has(name)) targets.push({ kind: "cache", name, path: path.join(root, ".cache", name) });
  }
  return { targets, skipped };
}
