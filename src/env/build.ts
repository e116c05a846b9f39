// Build a venv aside (temporary folder in venvRoot), install into it, then swap it in; remove it on any failure.

import { constants } from "node:fs";
import { access, mkdir, rm, stat } from "node:fs/promises";
import { CallAbortedError, ConfigError, EnvironmentBuildError, SandboxUnavailableError } from "../errors.js";
import type { BuildContext } from "./installer.js";
import { selectInstaller } from "./select-installer.js";
import { fingerprintInputs, requestRecord } from "./check.js";
import { InstallProgress } from "./install-progress.js";
import { prepareInstallSandbox } from "./install/sandbox.js";
import { linkSharedRuntime } from "./shared-runtime.js";
import { removeState, STATE_SCHEMA, writeState, type EnvironmentState } from "./fingerprint.js";
import { restoreLayout } from "./layout.js";
import type { PythonInfo } from "./python.js";
import { buildPath, relocateVenv, swapIn } from "./swap.js";
import type { Job } from "./types.js";

/** Create venvRoot if needed and make sure we can build in it. */
export async function ensureWritableRoot(venvRoot: string): Promise<void> {
  try {
    await mkdir(venvRoot, { recursive: true });
    if (!(await stat(venvRoot)).isDirectory()) throw Object.assign(new Error("not a directory"), { code: "ENOTDIR" });
    await access(venvRoot, constants.W_OK | constants.X_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new ConfigError(`venvRoot "${venvRoot}" is not a writable directory (${code})`, {
      key: "venvRoot",
      cause: err,
    });
  }
}

export function abortedError(job: Job): CallAbortedError {
  return new CallAbortedError(`building environment "${job.spec.name}" was aborted`, {
    cause: job.spec.signal?.reason,
  });
}

/** Build the venv for `job` aside and swap it in; the caller holds the lock. Returns the state written into it. */
export async function buildAndSwap(job: Job, python: PythonInfo, fingerprint: string): Promise<EnvironmentState> {
  const { spec, env, venvPath, wanted, emit } = job;
  const installer = await selectInstaller(spec.installer ?? "auto", env);
  const tmp = buildPath(spec.venvRoot, spec.name);
  let stage: "create-venv" | "install" = "create-venv";
  let installSandbox: EnvironmentState["installSandbox"] = "none";
  // While the install runs, its lines carry the elapsed time and counts, and ticks come between them.
  let progress: InstallProgress | undefined;
  const ctx: BuildContext = {
    python,
    venvPath: tmp,
    prompt: spec.name,
    dependencies: spec.dependencies,
    index: wanted.index,
    systemSitePackages: wanted.systemSitePackages,
    env,
    cwd: spec.venvRoot,
    signal: spec.signal,
    onLine: (line) => (progress ? progress.line(line) : emit({ stage, message: line, line })),
  };
  try {
    emit({ stage: "create-venv", message: `creating a Python ${python.version} venv with ${installer.description}` });
    await installer.createVenv(ctx);
    // Before the install: the layer's metadata stubs keep uv and pip from installing what the layer has.
    if (spec.sharedRuntime) {
      const stubs = await linkSharedRuntime(tmp, python, spec.sharedRuntime);
      emit({
        stage: "create-venv",
        message: `linked shared runtime "${spec.sharedRuntime.name}" (${stubs.length} distributions)`,
      });
    }
    if (spec.dependencies.length > 0) {
      stage = "install";
      emit({ stage: "install", message: `installing ${spec.dependencies.join(" ")}` });
      progress = new InstallProgress(spec.dependencies.join(" "), emit);
      // Only the install is confined: creating the venv runs no code but the interpreter's and the installer's own.
      ctx.sandbox = await prepareInstallSandbox({
        options: job.sandbox,
        installer: installer.name,
        venvRoot: spec.venvRoot,
        name: spec.name,
        buildDir: tmp,
        dependencies: spec.dependencies,
        index: wanted.index,
        python: { python: python.path, systemSitePackages: wanted.systemSitePackages },
        tools: () => installer.installTools(ctx),
        hostEnv: env,
        emit,
      });
      installSandbox = ctx.sandbox?.kind ?? "none";
      // Local folders are installed from their copies inside the sandbox (the folder itself is bound read-only).
      if (ctx.sandbox) ctx.dependencies = ctx.sandbox.dependencies;
      try {
        await installer.install(ctx);
        progress.stop(true);
      } finally {
        progress.stop(false);
        progress = undefined;
        await ctx.sandbox?.dispose();
      }
    }
    if (spec.signal?.aborted) throw abortedError(job);
    const state: EnvironmentState = {
      schema: STATE_SCHEMA,
      fingerprint,
      inputs: fingerprintInputs(python, wanted),
      python: await requestRecord(spec.python, python, env),
      installer: installer.name,
      installSandbox,
      builtAt: new Date().toISOString(),
    };
    // Install code could have replaced bin/python or rewritten pyvenv.cfg: put the host's back, from its own record.
    await restoreLayout(tmp, {
      python,
      systemSitePackages: wanted.systemSitePackages,
      relocatable: installer.name === "uv",
    });
    emit({ stage: "swap", message: `moving the new venv into ${venvPath}` });
    // Fix the paths first, so that the venv is consistent from the moment it appears under its final name.
    await relocateVenv(tmp, venvPath);
    // No state while the folder changes: a reader that looks meanwhile finds none and waits for the lock.
    await removeState(spec.venvRoot, spec.name);
    await swapIn(tmp, venvPath);
    await writeState(spec.venvRoot, spec.name, state);
    return state;
  } catch (err) {
    progress?.stop(false);
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    if (err instanceof EnvironmentBuildError || err instanceof ConfigError || err instanceof CallAbortedError)
      throw err;
    if (err instanceof SandboxUnavailableError) throw err;
    const message = `building environment "${spec.name}" in ${venvPath} failed: ${(err as Error).message}`;
    throw new EnvironmentBuildError(message, { cause: err });
  }
}
