// Reads a venv root for prune: its entries (lstat only, never following a symlink), state files and caches.

import { lstat, readdir } from "node:fs/promises";
import path from "node:path";
import type { RootEntry, RootListing } from "./classify.js";

function typeOf(info: { isDirectory(): boolean; isFile(): boolean; isSymbolicLink(): boolean }): RootEntry["type"] {
  if (info.isSymbolicLink()) return "symlink";
  if (info.isDirectory()) return "dir";
  return info.isFile() ? "file" : "other";
}

/** The names in `dir`, or none when it is missing or not a real folder (a symlink there is not listed through). */
async function namesIn(dir: string): Promise<string[]> {
  const info = await lstat(dir).catch(() => undefined);
  if (!info?.isDirectory()) return [];
  return readdir(dir).catch(() => []);
}

export async function scanRoot(root: string): Promise<RootListing> {
  const entries: RootEntry[] = [];
  for (const name of await namesIn(root)) {
    const info = await lstat(path.join(root, name)).catch(() => undefined);
    if (!info) continue;
    const type = typeOf(info);
    const cfg = type === "dir" ? await lstat(path.join(root, name, "pyvenv.cfg")).catch(() => undefined) : undefined;
    entries.push({ name, type, looksLikeVenv: cfg?.isFile() ?? false });
  }
  const stateFiles = [];
  for (const name of await namesIn(path.join(root, ".state"))) {
    const info = await lstat(path.join(root, ".state", name)).catch(() => undefined);
    if (info?.isFile() && name.endsWith(".json")) stateFiles.push(name.slice(0, -".json".length));
  }
  return { root, entries, stateNames: stateFiles, cacheNames: await namesIn(path.join(root, ".cache")) };
}
