// Build aside and swap in: temp folder names, leftovers of crashed builds, path fix-ups, and the two renames.

import { randomBytes } from "node:crypto";
import { lstat, readdir, rename, rm } from "node:fs/promises";
import path from "node:path";
import { readRegularFile, replaceFile } from "./safe-fs.js";

const SUFFIX_RE = "[0-9a-f]{12}";
const MAX_SCRIPT_BYTES = 1 << 20;

function suffix(): string {
  return randomBytes(6).toString("hex");
}

/** A fresh path (not yet created) to build the venv `name` in, inside venvRoot so the final rename stays on one filesystem. */
export function buildPath(venvRoot: string, name: string): string {
  return path.join(venvRoot, `.build-${name}-${suffix()}`);
}

/** The lock file for the venv `name`. */
export function lockPath(venvRoot: string, name: string): string {
  return path.join(venvRoot, `.lock-${name}`);
}

/** Remove what crashed builds of `name` left behind. Call only while holding its lock. */
export async function removeLeftovers(venvRoot: string, name: string): Promise<string[]> {
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const re = new RegExp(`^\\.(build|old)-${escaped}-${SUFFIX_RE}$`);
  const entries = await readdir(venvRoot).catch(() => [] as string[]);
  const stale = entries.filter((e) => re.test(e)).map((e) => path.join(venvRoot, e));
  await Promise.all(stale.map((p) => rm(p, { recursive: true, force: true })));
  return stale;
}

/**
 * A venv made by `python -m venv` names its own folder in script shebangs, activators and pyvenv.cfg's `command`.
 * Rewrite the build folder's path to the final one in those files (uv's relocatable venvs have none to fix).
 * Symlinks (bin/python) and binaries are left alone; a file is read through O_NOFOLLOW and replaced by rename, so a
 * symlink swapped in after the check is neither read nor written through. Returns the files changed.
 */
export async function relocateVenv(buildDir: string, finalDir: string): Promise<string[]> {
  const bin = path.join(buildDir, "bin");
  const files = [
    ...(await readdir(bin).catch(() => [] as string[])).map((f) => path.join(bin, f)),
    path.join(buildDir, "pyvenv.cfg"),
  ];
  const changed: string[] = [];
  for (const file of files) {
    const info = await lstat(file).catch(() => undefined);
    if (!info?.isFile() || info.size > MAX_SCRIPT_BYTES) continue;
    const bytes = await readRegularFile(file, MAX_SCRIPT_BYTES).catch(() => undefined);
    if (!bytes || bytes.includes(0)) continue; // gone, swapped for a symlink, or a binary
    const text = bytes.toString("utf8");
    if (!text.includes(buildDir)) continue;
    await replaceFile(file, text.replaceAll(buildDir, finalDir), info.mode & 0o777);
    changed.push(file);
  }
  return changed;
}

/**
 * Put `buildDir` in place of `finalDir`: rename the old venv aside, rename the new one in, delete the old one.
 * If the second rename fails the old venv is put back. Readers see the old venv or the new one, and for a
 * moment none (they then wait on the lock).
 */
export async function swapIn(buildDir: string, finalDir: string): Promise<void> {
  const oldDir = path.join(path.dirname(finalDir), `.old-${path.basename(finalDir)}-${suffix()}`);
  let movedOld = false;
  try {
    await rename(finalDir, oldDir);
    movedOld = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  try {
    await rename(buildDir, finalDir);
  } catch (err) {
    if (movedOld) await rename(oldDir, finalDir).catch(() => {});
    throw err;
  }
  // A failure here only leaves a folder that the next build of this name removes.
  if (movedOld) await rm(oldDir, { recursive: true, force: true }).catch(() => {});
}
