// Measures what a private folder holds on disk, without following a single symlink the extension may have planted.

import { lstat, opendir } from "node:fs/promises";
import { join } from "node:path";

/** Entries one walk visits at most: a folder of a million empty files must not hold the host for long. */
export const MAX_WALK_ENTRIES = 200_000;

/**
 * Bytes allocated on disk (st_blocks, so sparse files count what they really use) below `root`. Symlinks count as
 * themselves and are never followed; entries that vanish meanwhile are skipped. Async, so the event loop keeps
 * serving while it walks; past `maxEntries` it stops and returns what it has counted (`truncated`).
 */
export async function diskUsage(
  root: string,
  maxEntries = MAX_WALK_ENTRIES,
): Promise<{ bytes: number; truncated: boolean }> {
  let bytes = 0;
  let seen = 0;
  const todo = [root];
  while (todo.length) {
    const dir = todo.pop()!;
    let handle;
    try {
      handle = await opendir(dir);
    } catch {
      continue; // gone, or no longer a folder
    }
    for await (const entry of handle) {
      // Leaving the loop (return) closes the handle.
      if (++seen > maxEntries) return { bytes, truncated: true };
      const path = join(dir, entry.name);
      try {
        const stat = await lstat(path);
        bytes += stat.blocks * 512;
        if (stat.isDirectory()) todo.push(path);
      } catch {
        // removed meanwhile
      }
    }
  }
  return { bytes, truncated: false };
}
