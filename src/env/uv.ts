// The uv backend: `uv venv --relocatable` and `uv pip install`, and finding a uv that really runs.

import type { Backend, BuildContext } from "./backend.js";
import { indexArgs } from "./backend.js";
import { findOnPath } from "./python.js";
import { runChecked, runCommand } from "./run.js";
import path from "node:path";

export interface UvInfo {
  path: string;
  /** e.g. "0.13.9" */
  version: string;
}

/** The first `uv` on the PATH of `env` that runs and says it is uv; undefined when there is none. */
export async function findUv(env: NodeJS.ProcessEnv = process.env): Promise<UvInfo | undefined> {
  for (const file of await findOnPath("uv", env)) {
    try {
      const r = await runCommand([file, "--version"], { env, timeoutMs: 15_000 });
      const version = /^uv (\d+\.\d+\.\d+\S*)/.exec(r.stdout.trim())?.[1];
      if (r.exitCode === 0 && version) return { path: file, version };
    } catch {
      // not runnable: try the next one
    }
  }
  return undefined;
}

/** A Backend that drives the given uv. */
export function uvBackend(uv: UvInfo): Backend {
  return {
    name: "uv",
    description: `uv ${uv.version}`,
    async createVenv(ctx: BuildContext): Promise<void> {
      // --relocatable: scripts and activators find the venv relative to themselves, so the rename is safe.
      // --no-project: never pick up a pyproject.toml or its Python pin from the working directory.
      const argv = [
        uv.path,
        "venv",
        "--python",
        ctx.python.path,
        "--relocatable",
        "--no-project",
        "--prompt",
        ctx.prompt,
        ctx.venvPath,
      ];
      await runChecked("creating the venv with uv", argv, { env: ctx.env, cwd: ctx.cwd, signal: ctx.signal, onLine: ctx.onLine });
    },
    async install(ctx: BuildContext): Promise<void> {
      const python = path.join(ctx.venvPath, "bin", "python");
      const argv = [uv.path, "pip", "install", "--python", python, ...indexArgs(ctx.index), "--", ...ctx.dependencies];
      await runChecked("installing dependencies with uv", argv, {
        env: ctx.env,
        cwd: ctx.cwd,
        signal: ctx.signal,
        onLine: ctx.onLine,
      });
    },
  };
}
