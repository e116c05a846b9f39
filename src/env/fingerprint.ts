// The fingerprint of a venv's inputs and the state file that records it inside the venv.

import { createHash } from "node:crypto";
import { readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import type { PythonInfo } from "./python.js";

/** The file inside each venv that records what it was built from. */
export const STATE_FILE = ".pyisolate-env.json";
export const STATE_SCHEMA = 1;

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
  backend: "uv" | "pip";
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

/** sha256 (hex) over the canonical JSON of the inputs. The backend is deliberately not part of it. */
export function computeFingerprint(inputs: FingerprintInputs): string {
  return createHash("sha256")
    .update(canonicalJson({ schema: STATE_SCHEMA, ...inputs }))
    .digest("hex");
}

/** Read a venv's state file; undefined when it is missing or not one of ours (a corrupt venv rebuilds). */
export async function readState(venvPath: string): Promise<EnvironmentState | undefined> {
  try {
    const parsed = JSON.parse(await readFile(path.join(venvPath, STATE_FILE), "utf8")) as Partial<EnvironmentState>;
    if (parsed.schema !== STATE_SCHEMA || typeof parsed.fingerprint !== "string" || !parsed.inputs || !parsed.python)
      return undefined;
    if (typeof parsed.inputs.python?.path !== "string" || typeof parsed.inputs.python.version !== "string") return undefined;
    return parsed as EnvironmentState;
  } catch {
    return undefined;
  }
}

/** Write the state file atomically (a reader sees the old file or the new one, never half of one). */
export async function writeState(venvPath: string, state: Omit<EnvironmentState, "schema">): Promise<void> {
  const file = path.join(venvPath, STATE_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify({ schema: STATE_SCHEMA, ...state }, null, 2)}\n`);
  await rename(tmp, file);
}
