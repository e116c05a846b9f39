// Decide whether an existing venv can be reused: a spawn-free fast check, and a full one after resolving Python.

import { lstat, stat } from "node:fs/promises";
import type { EnvironmentState, FileIdentity, FingerprintInputs, PythonRequestRecord } from "./fingerprint.js";
import { computeFingerprint, readState } from "./fingerprint.js";
import type { IndexOptions } from "./index-options.js";
import { layoutProblem, type VenvLayout } from "./layout.js";
import type { PythonInfo } from "./python.js";
import { findOnPath } from "./python.js";

/** The spec's inputs other than the interpreter. */
export interface WantedInputs {
  python: string | undefined;
  dependencies: string[];
  index: IndexOptions;
  runtimeVersion: string;
  /** The shared runtime layer the venv links to, if any. */
  sharedRuntime?: { name: string; fingerprint: string };
  /** Whether the venv sees the base interpreter's site-packages (`--system-site-packages`). */
  systemSitePackages: boolean;
}

export function fingerprintInputs(python: PythonInfo, wanted: WantedInputs): FingerprintInputs {
  return {
    python: { path: python.path, version: python.version },
    dependencies: [...wanted.dependencies],
    indexUrl: wanted.index.indexUrl,
    extraIndexUrls: [...wanted.index.extraIndexUrls],
    findLinks: [...wanted.index.findLinks],
    runtimeVersion: wanted.runtimeVersion,
    sharedRuntime: wanted.sharedRuntime,
    systemSitePackages: wanted.systemSitePackages ? true : undefined,
  };
}

/** A request naming a command (or the default python3) is looked up on PATH; a version or a path is not. */
export function commandName(request: string | undefined): string | null {
  if (request === undefined || request.trim() === "") return "python3";
  const r = request.trim();
  return /^\d+(\.\d+){0,2}$/.test(r) || r.includes("/") || r.startsWith("~") ? null : r;
}

export async function fileIdentity(file: string): Promise<FileIdentity | undefined> {
  const s = await stat(file).catch(() => undefined);
  return s ? { size: s.size, mtimeMs: s.mtimeMs, ino: s.ino } : undefined;
}

function sameIdentity(a: FileIdentity | undefined, b: FileIdentity): boolean {
  return !!a && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino;
}

/** What to record about how the interpreter was found, for the next fast check. */
export async function requestRecord(
  request: string | undefined,
  python: PythonInfo,
  env: NodeJS.ProcessEnv,
): Promise<PythonRequestRecord> {
  const name = commandName(request);
  const interpreter = await fileIdentity(python.path);
  return {
    request: request?.trim() || null,
    pathHit: name ? ((await findOnPath(name, env))[0] ?? null) : null,
    interpreter: interpreter ?? { size: -1, mtimeMs: -1, ino: -1 },
  };
}

/** Where a venv and its host-owned state live: `venvRoot/name` and `venvRoot/.state/name.json`. */
export interface VenvPlace {
  venvRoot: string;
  name: string;
  venvPath: string;
}

/** The layout the host wrote from this state (see layout.ts). */
export function layoutOf(state: EnvironmentState): VenvLayout {
  return {
    python: state.inputs.python,
    systemSitePackages: state.inputs.systemSitePackages === true,
    relocatable: state.installer === "uv",
  };
}

/**
 * The hot path: reuse when the same python request still points at the same interpreter file (by PATH lookup
 * and stat, no spawn), the venv's links and pyvenv.cfg are still the host's, and the fingerprint of the spec
 * matches the recorded one.
 */
export async function fastCheck(
  place: VenvPlace,
  wanted: WantedInputs,
  env: NodeJS.ProcessEnv,
): Promise<EnvironmentState | undefined> {
  const state = await readState(place.venvRoot, place.name);
  if (!state) return undefined;
  const rec = state.python;
  if (rec.request !== (wanted.python?.trim() || null)) return undefined;
  const name = commandName(wanted.python);
  if (name && (await findOnPath(name, env))[0] !== rec.pathHit) return undefined;
  if (!sameIdentity(await fileIdentity(state.inputs.python.path), rec.interpreter)) return undefined;
  if (await layoutProblem(place.venvPath, layoutOf(state))) return undefined;
  return computeFingerprint(fingerprintInputs(state.inputs.python, wanted)) === state.fingerprint ? state : undefined;
}

export type FullCheck = { reusable: true; state: EnvironmentState } | { reusable: false; reason: string };

/**
 * The slow path, after resolving Python (which ran the base interpreter, the one the guest runs): compare
 * fingerprints and check the venv's links and pyvenv.cfg. Nothing in the venv is run: install code could have
 * replaced bin/python or planted a `.pth` that site processing would execute on the host.
 */
export async function fullCheck(place: VenvPlace, fingerprint: string): Promise<FullCheck> {
  const state = await readState(place.venvRoot, place.name);
  if (!state) {
    const exists = await lstat(place.venvPath).catch(() => undefined);
    return { reusable: false, reason: exists ? "the venv has no valid state file" : "no venv yet" };
  }
  if (state.fingerprint !== fingerprint) return { reusable: false, reason: "the inputs changed" };
  const problem = await layoutProblem(place.venvPath, layoutOf(state));
  if (problem) return { reusable: false, reason: problem };
  return { reusable: true, state };
}
