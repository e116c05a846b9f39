// ensureEnvironment: reuse a venv whose fingerprint matches, else build one aside and swap it in, under a lock.

import path from "node:path";
import { abortedError, buildAndSwap, ensureWritableRoot } from "./build.js";
import { fastCheck, fingerprintInputs, fullCheck, requestRecord } from "./check.js";
import { computeFingerprint, markUsed, writeState, type EnvironmentState } from "./fingerprint.js";
import { withLock, type LockOwner } from "./lock.js";
import { resolvePython, type PythonInfo } from "./python.js";
import { lockPath, removeLeftovers } from "./swap.js";
import { toJob, type Environment, type EnvironmentSpec, type Job } from "./types.js";

export { resolvePython, type PythonInfo } from "./python.js";
export { findUv, type UvInfo } from "./uv.js";
export type { Environment, EnvironmentSpec, ProgressEvent } from "./types.js";

/**
 * Make sure the venv `venvRoot/name` exists and matches `spec`. An unchanged fingerprint means no work (and no
 * process spawned); otherwise the venv is built aside and swapped in, so a failed build leaves the old one as it
 * was. Calls for the same venv, in this process or others, wait for each other.
 * Throws ConfigError (bad option, no matching Python), EnvironmentBuildError (uv's/pip's own output) or
 * CallAbortedError (spec.signal).
 */
export async function ensureEnvironment(spec: EnvironmentSpec): Promise<Environment> {
  const job = toJob(spec);
  const { env, venvPath, wanted, emit } = job;
  if (spec.signal?.aborted) throw abortedError(job);

  const place = { venvRoot: spec.venvRoot, name: spec.name, venvPath };
  const quick = await fastCheck(place, wanted, env);
  if (quick) {
    const { version, path: interpreter } = quick.inputs.python;
    emit({ stage: "resolve-python", message: `Python ${version} (${interpreter}), as recorded` });
    emit({ stage: "check", message: `fingerprint ${quick.fingerprint.slice(0, 12)} matches`, reused: true });
    emit({ stage: "done", message: `reusing ${venvPath}`, reused: true });
    await markUsed(spec.venvRoot, spec.name);
    return toEnvironment(job, quick, true);
  }

  const python = await resolvePython(spec.python, env);
  emit({ stage: "resolve-python", message: `Python ${python.version} (${python.path})` });
  const fingerprint = computeFingerprint(fingerprintInputs(python, wanted));
  const before = await fullCheck(place, fingerprint);
  if (before.reusable) return reuse(job, before.state, python);
  emit({ stage: "check", message: `${before.reason}: building ${venvPath}`, reused: false });
  await ensureWritableRoot(spec.venvRoot);
  if (spec.signal?.aborted) throw abortedError(job);

  const onWait = (owner: LockOwner | undefined): void => {
    const who = owner ? `process ${owner.pid}` : "another build in this process";
    emit({ stage: "lock-wait", message: `waiting for ${who} to finish with ${venvPath}` });
  };
  return withLock(lockPath(spec.venvRoot, spec.name), { signal: spec.signal, onWait }, async () => {
    // Whoever held the lock may have just built exactly this.
    const after = await fullCheck(place, fingerprint);
    if (after.reusable) return reuse(job, after.state, python);
    await removeLeftovers(spec.venvRoot, spec.name);
    const state = await buildAndSwap(job, python, fingerprint);
    emit({ stage: "done", message: `built ${venvPath}`, reused: false });
    return toEnvironment(job, state, false);
  });
}

async function reuse(job: Job, state: EnvironmentState, python: PythonInfo): Promise<Environment> {
  job.emit({ stage: "check", message: `fingerprint ${state.fingerprint.slice(0, 12)} matches`, reused: true });
  // Record how the interpreter was found this time, so that the next call takes the fast path.
  const record = await requestRecord(job.spec.python, python, job.env);
  await writeState(job.spec.venvRoot, job.spec.name, { ...state, python: record }).catch(() => {});
  job.emit({ stage: "done", message: `reusing ${job.venvPath}`, reused: true });
  return toEnvironment(job, state, true);
}

function toEnvironment(job: Job, state: EnvironmentState, reused: boolean): Environment {
  return {
    name: job.spec.name,
    venvPath: job.venvPath,
    pythonPath: path.join(job.venvPath, "bin", "python"),
    basePython: state.inputs.python.path,
    pythonVersion: state.inputs.python.version,
    installer: state.installer,
    backend: state.installer,
    fingerprint: state.fingerprint,
    reused,
    installSandbox: state.installSandbox,
    sharedRuntime: job.spec.sharedRuntime,
    systemSitePackages: state.inputs.systemSitePackages === true,
  };
}
