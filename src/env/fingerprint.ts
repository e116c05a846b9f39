// The fingerprint of a venv's inputs and the state file that records it, in a host-owned folder beside the venvs.

import { createHash } from "node:crypto";
import { lutimes, unlink } from "node:fs/promises";
import path from "node:path";
import type { PythonInfo } from "./python.js";
import { ensureRealDir, readRegularFile, replaceFile } from "./safe-fs.js";

/**
 * The folder under venvRoot that holds every venv's state file (`<name>.json`). Not inside the venv: install code
 * writes the venv (and could plant a symlink where the host writes), never this folder (the install sandbox binds
 * only the build folder and the caches writable). A dot name: never an extension's.
 */
export const STATE_DIR = ".state";
/** Schema 2: the state moved out of the venv, and `inputs.python.path` is the interpreter the guest runs. */
export const STATE_SCHEMA = 2;
/** A state file is a few hundred bytes; anything much larger is not one of ours. */
const MAX_STATE_BYTES = 1 << 20;

/** Where the state of the venv `venvRoot/name` lives. */
export function statePath(venvRoot: string, name: string): string {
  return path.join(venvRoot, STATE_DIR, `${name}.json`);
}

/** Everything that decides a venv's contents; the fingerprint is a hash of exactly this. */
export interface FingerprintInputs {
  python: PythonInfo;
  /** In the given order: with pip, order can change what is resolved. */
  dependencies: string[];
  indexUrl: string | null;
  extraIndexUrls: string[];
  findLinks: string[];
  runtimeVersion: string;
  /** The shared runtime layer (name and its own fingerprint); absent for a sealed venv, so old fingerprints stay valid. */
  sharedRuntime?: { name: string; fingerprint: string };
  /** `true` for a venv that sees the base interpreter's site-packages; absent otherwise, so old fingerprints stay valid. */
  systemSitePackages?: true;
}

/** How the interpreter was chosen, so that an unchanged request can skip resolving (no process spawn). */
export interface PythonRequestRecord {
  /** The spec's `python` as given, or null for the default. */
  request: string | null;
  /** For a command-name request: the first hit on PATH when built (a changed PATH means resolve again). */
  pathHit: string | null;
  /** The interpreter file's identity when built: a reinstalled Python means resolve again. */
  interpreter: FileIdentity;
}

export interface FileIdentity {
  size: number;
  mtimeMs: number;
  ino: number;
}

export interface EnvironmentState {
  schema: number;
  fingerprint: string;
  inputs: FingerprintInputs;
  python: PythonRequestRecord;
  /** The installer that built the venv. Files written before it had this name say `backend` (read as well). */
  installer: "uv" | "pip";
  /** How the install was confined (not part of the fingerprint: the same inputs give the same venv). */
  installSandbox?: "bwrap" | "bwrap-degraded" | "landlock" | "none";
  builtAt: string;
}

/** JSON with object keys sorted at every level, so equal inputs always hash equal. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** sha256 (hex) over the canonical JSON of the inputs. The installer is deliberately not part of it. */
export function computeFingerprint(inputs: FingerprintInputs): string {
  return createHash("sha256")
    .update(canonicalJson({ schema: STATE_SCHEMA, ...inputs }))
    .digest("hex");
}

/**
 * The installer a state file names: `installer`, or `backend` in files written before the rename (same schema: the
 * fingerprint did not change, so such a venv is reused, not rebuilt). Neither, or a value not ours: not a state.
 */
function installerOf(parsed: Record<string, unknown>): "uv" | "pip" | undefined {
  const named = parsed.installer ?? parsed.backend;
  return named === "uv" || named === "pip" ? named : undefined;
}

/**
 * Read a venv's state file; undefined when it is missing or not one of ours (a corrupt venv rebuilds). A symlink,
 * a non-regular file or an oversized one counts as not ours: it is never followed or read in full.
 */
export async function readState(venvRoot: string, name: string): Promise<EnvironmentState | undefined> {
  try {
    const text = (await readRegularFile(statePath(venvRoot, name), MAX_STATE_BYTES)).toString("utf8");
    const parsed = JSON.parse(text) as Partial<EnvironmentState>;
    if (parsed.schema !== STATE_SCHEMA || typeof parsed.fingerprint !== "string" || !parsed.inputs || !parsed.python)
      return undefined;
    if (typeof parsed.inputs.python?.path !== "string" || typeof parsed.inputs.python.version !== "string")
      return undefined;
    const installer = installerOf(parsed);
    if (!installer) return undefined;
    const { backend: _old, ...rest } = parsed as EnvironmentState & { backend?: unknown };
    return { ...rest, installer } as EnvironmentState;
  } catch {
    return undefined;
  }
}

/**
 * Write the state file atomically (a reader sees the old file or the new one, never half of one): a fresh temp
 * file (O_EXCL|O_NOFOLLOW) renamed over it, so nothing planted at either name is written through.
 */
export async function writeState(
  venvRoot: string,
  name: string,
  state: Omit<EnvironmentState, "schema">,
): Promise<void> {
  await ensureRealDir(path.join(venvRoot, STATE_DIR));
  await replaceFile(statePath(venvRoot, name), `${JSON.stringify({ schema: STATE_SCHEMA, ...state }, null, 2)}\n`);
}

/**
 * Record that the venv was used now: its state file's mtime (prune's `unusedForDays` reads it). lutimes never
 * follows a link; a state file that cannot be touched is left as it is (the use is not recorded, nothing fails).
 */
export async function markUsed(venvRoot: string, name: string): Promise<void> {
  const now = new Date();
  await lutimes(statePath(venvRoot, name), now, now).catch(() => {});
}

/** Forget a venv's state (before its folder is replaced): a reader meanwhile sees no state and waits for the lock. */
export async function removeState(venvRoot: string, name: string): Promise<void> {
  await unlink(statePath(venvRoot, name)).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== "ENOENT") throw err;
  });
}
