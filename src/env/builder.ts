// ensureEnvironment: reuse a venv whose fingerprint matches, else build one aside and swap it in, under a lock.

import { constants } from "node:fs";
import { access, mkdir, rm, stat } from "node:fs/promises";
import path from "node:path";
import { CallAbortedError, ConfigError, EnvironmentBuildError } from "../errors.js";
import { selectBackend, type IndexOptions } from "./backend.js";
import { fastCheck, fingerprintInputs, fullCheck, requestRecord, type WantedInputs } from "./check.js";
import { computeFingerprint, writeState, type EnvironmentState } from "./fingerprint.js";
import { withLock } from "./lock.js";
import { resolvePython, type PythonInfo } from "./python.js";
import { buildPath, lockPath, relocateVenv, removeLeftovers, swapIn } from "./swap.js";

export { resolvePython } from "./python.js";
export { findUv } from "./uv.js";

export interface EnvironmentSpec {
  /** Folder name of the venv under venvRoot (validated by the caller). */
  name: string;
  /** Absolute folder holding all venvs. */
  venvRoot: string;
  /** pip requirement strings, in order (order can change what pip resolves). */
  dependencies: string[];
  /** "3.11", "3.11.7", a path to an interpreter, or a command name; default: python3 on PATH. */
  python?: string;
  indexUrl?: string;
  extraIndexUrls?: string[];
  findLinks?: string[];
  /** auto: uv when on PATH, else venv + pip. */
  backend?: "auto" | "uv" | "pip";
  /** The pyisolate runtime's version: part of the fingerprint. */
  runtimeVersion: string;
  onProgress?: (e: ProgressEvent) => void;
  /** Aborting kills a running install and rejects with CallAbortedError. */
  signal?: AbortSignal;
  /** Environment for uv/pip and the interpreter search (default process.env); its PATH is where uv is looked for. */
  env?: NodeJS.ProcessEnv;
}

export interface ProgressEvent {
  stage: "resolve-python" | "check" | "lock-wait" | "create-venv" | "install" | "swap" | "done";
  message: string;
  /** One line of uv's or pip's output. */
  line?: string;
  reused?: boolean;
}

export interface Environment {
  name: string;
  venvPath: string;
  /** venvPath/bin/python */
  pythonPath: string;
  pythonVersion: string;
  /** The backend that built it (a reused venv keeps the one that built it). */
  backend: "uv" | "pip";
  fingerprint: string;
  reused: boolean;
}

function validate(spec: EnvironmentSpec): void {
  if (!path.isAbsolute(spec.venvRoot)) throw new ConfigError(`venvRoot must be an absolute path, got "${spec.venvRoot}"`, { key: "venvRoot" });
  if (!spec.name || spec.name.includes("/") || spec.name.startsWith(".")) throw new ConfigError(`environment name "${spec.name}" is not a plain folder name`, { key: "name" });
  const bad = spec.dependencies.find((d) => typeof d !== "string" || d.trim() === "" || d.trim().startsWith("-"));
  if (bad !== undefined) throw new ConfigError(`dependency ${JSON.stringify(bad)} is not a requirement (options are not allowed here)`, { key: "dependencies" });
  if (spec.backend !== undefined && !["auto", "uv", "pip"].includes(spec.backend)) throw new ConfigError(`backend must be "auto", "uv" or "pip", got "${spec.backend}"`, { key: "backend" });
}

function toEnvironment(spec: EnvironmentSpec, venvPath: string, state: EnvironmentState, reused: boolean): Environment {
  const { version } = state.inputs.python;
  return { name: spec.name, venvPath, pythonPath: path.join(venvPath, "bin", "python"), pythonVersion: version, backend: state.backend, fingerprint: state.fingerprint, reused };
}

async function ensureWritableRoot(venvRoot: string): Promise<void> {
  try {
    await mkdir(venvRoot, { recursive: true });
    if (!(await stat(venvRoot)).isDirectory()) throw Object.assign(new Error("not a directory"), { code: "ENOTDIR" });
    await access(venvRoot, constants.W_OK | constants.X_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new ConfigError(`venvRoot "${venvRoot}" is not a writable directory (${code})`, { key: "venvRoot", cause: err });
  }
}

/** Make sure the venv for `spec` exists and matches it; build it aside and swap it in when it does not. */
export async function ensureEnvironment(spec: EnvironmentSpec): Promise<Environment> {
  validate(spec);
  const env = spec.env ?? process.env;
  const emit = (e: ProgressEvent): void => spec.onProgress?.(e);
  const venvPath = path.join(spec.venvRoot, spec.name);
  const index: IndexOptions = { indexUrl: spec.indexUrl ?? null, extraIndexUrls: spec.extraIndexUrls ?? [], findLinks: spec.findLinks ?? [] };
  const wanted: WantedInputs = { python: spec.python, dependencies: spec.dependencies, index, runtimeVersion: spec.runtimeVersion };
  const checkAbort = (): void => {
    if (spec.signal?.aborted) throw new CallAbortedError(`building environment "${spec.name}" was aborted`, { cause: spec.signal.reason });
  };
  checkAbort();

  const quick = await fastCheck(venvPath, wanted, env);
  if (quick) {
    emit({ stage: "resolve-python", message: `Python ${quick.inputs.python.version} (${quick.inputs.python.path}), as recorded` });
    emit({ stage: "check", message: `fingerprint ${quick.fingerprint.slice(0, 12)} matches`, reused: true });
    emit({ stage: "done", message: `reusing ${venvPath}`, reused: true });
    return toEnvironment(spec, venvPath, quick, true);
  }

  const python = await resolvePython(spec.python, env);
  emit({ stage: "resolve-python", message: `Python ${python.version} (${python.path})` });
  const fingerprint = computeFingerprint(fingerprintInputs(python, wanted));
  const before = await fullCheck(venvPath, fingerprint, env);
  if (before.reusable) return reuse(spec, venvPath, before.state, python, env, emit);
  emit({ stage: "check", message: `${before.reason}: building ${venvPath}`, reused: false });
  await ensureWritableRoot(spec.venvRoot);
  checkAbort();

  const onWait = (owner: { pid: number } | undefined): void =>
    emit({ stage: "lock-wait", message: `waiting for ${owner ? `process ${owner.pid}` : "another build in this process"} to finish with ${venvPath}` });
  return withLock(lockPath(spec.venvRoot, spec.name), { signal: spec.signal, onWait }, async () => {
    // Whoever held the lock may have just built exactly this.
    const after = await fullCheck(venvPath, fingerprint, env);
    if (after.reusable) return reuse(spec, venvPath, after.state, python, env, emit);
    await removeLeftovers(spec.venvRoot, spec.name);
    return build(spec, venvPath, python, fingerprint, wanted, env, emit);
  });
}

async function reuse(spec: EnvironmentSpec, venvPath: string, state: EnvironmentState, python: PythonInfo, env: NodeJS.ProcessEnv, emit: (e: ProgressEvent) => void): Promise<Environment> {
  emit({ stage: "check", message: `fingerprint ${state.fingerprint.slice(0, 12)} matches`, reused: true });
  // Record how the interpreter was found now, so that the next call takes the fast path.
  const record = await requestRecord(spec.python, python, env);
  await writeState(venvPath, { ...state, python: record }).catch(() => {});
  emit({ stage: "done", message: `reusing ${venvPath}`, reused: true });
  return toEnvironment(spec, venvPath, state, true);
}

async function build(spec: EnvironmentSpec, venvPath: string, python: PythonInfo, fingerprint: string, wanted: WantedInputs, env: NodeJS.ProcessEnv, emit: (e: ProgressEvent) => void): Promise<Environment> {
  const backend = await selectBackend(spec.backend ?? "auto", env);
  const tmp = buildPath(spec.venvRoot, spec.name);
  const ctx = {
    python, venvPath: tmp, prompt: spec.name, dependencies: spec.dependencies, index: wanted.index, env, cwd: spec.venvRoot, signal: spec.signal,
    onLine: (line: string) => emit({ stage: current, message: line, line }),
  };
  let current: "create-venv" | "install" = "create-venv";
  try {
    emit({ stage: "create-venv", message: `creating a Python ${python.version} venv with ${backend.description}` });
    await backend.createVenv(ctx);
    if (spec.dependencies.length > 0) {
      current = "install";
      emit({ stage: "install", message: `installing ${spec.dependencies.join(" ")}` });
      await backend.install(ctx);
    }
    if (spec.signal?.aborted) throw new CallAbortedError(`building environment "${spec.name}" was aborted`, { cause: spec.signal.reason });
    const state: Omit<EnvironmentState, "schema"> = {
      fingerprint, inputs: fingerprintInputs(python, wanted), python: await requestRecord(spec.python, python, env), backend: backend.name, builtAt: new Date().toISOString(),
    };
    await writeState(tmp, state);
    emit({ stage: "swap", message: `moving the new venv into ${venvPath}` });
    await relocateVenv(tmp, venvPath);
    await swapIn(tmp, venvPath);
    emit({ stage: "done", message: `built ${venvPath}`, reused: false });
    return toEnvironment(spec, venvPath, { schema: 1, ...state }, false);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    if (err instanceof EnvironmentBuildError || err instanceof ConfigError || err instanceof CallAbortedError) throw err;
    throw new EnvironmentBuildError(`building environment "${spec.name}" in ${venvPath} failed: ${(err as Error).message}`, { cause: err });
  }
}
