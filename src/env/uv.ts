// The uv installer: `uv venv --relocatable` and `uv pip install`, and finding a uv that really runs.

import { open, realpath } from "node:fs/promises";
import path from "node:path";
import { EnvironmentBuildError } from "../errors.js";
import type { VenvInstaller, BuildContext } from "./installer.js";
import { installCommand } from "./installer.js";
import { indexArgs } from "./index-options.js";
import { findOnPath } from "./python.js";
import { runChecked, runCommand } from "./run.js";

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

async function startsWithShebang(file: string): Promise<boolean> {
  const fh = await open(file, "r");
  try {
    const { buffer, bytesRead } = await fh.read(Buffer.alloc(2), 0, 2, 0);
    return bytesRead === 2 && buffer.toString("latin1") === "#!";
  } finally {
    await fh.close();
  }
}

/**
 * uv's real executable. The uv on PATH may be a shim script (pyenv's) that needs the host's home to run, which an
 * install sandbox does not show; uv names its own binary in $UV for the commands it runs, so ask it once.
 */
export async function resolveUvBinary(
  uv: UvInfo,
  python: string,
  ctx: Pick<BuildContext, "env" | "cwd" | "signal">,
): Promise<string> {
  const real = await realpath(uv.path);
  if (!(await startsWithShebang(real))) return real;
  const argv = [
    uv.path,
    "run",
    "--no-project",
    "--no-config",
    "--offline",
    "--no-cache",
    "--python",
    python,
    "--",
    python,
    "-I",
    "-c",
    "import os; print(os.environ.get('UV', ''))",
  ];
  const r = await runCommand(argv, { env: ctx.env, cwd: ctx.cwd, signal: ctx.signal, timeoutMs: 60_000 });
  const found = r.stdout.trim();
  if (r.exitCode === 0 && path.isAbsolute(found) && !(await startsWithShebang(found).catch(() => true)))
    return realpath(found);
  throw new EnvironmentBuildError(
    `${uv.path} is a script, and uv did not name its real binary (needed inside the install sandbox)`,
    {
      output: r.tail.join("\n"),
      command: argv,
    },
  );
}

/** A VenvInstaller that drives the given uv. */
export function uvInstaller(uv: UvInfo): VenvInstaller {
  // Resolved by installTools when the install runs in the sandbox.
  let binary: string | undefined;
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
        ...(ctx.systemSitePackages ? ["--system-site-packages"] : []),
        "--prompt",
        ctx.prompt,
        ctx.venvPath,
      ];
      await runChecked("creating the venv with uv", argv, {
        env: ctx.env,
        cwd: ctx.cwd,
        signal: ctx.signal,
        onLine: ctx.onLine,
      });
    },
    async installTools(ctx: BuildContext): Promise<string[]> {
      binary ??= await resolveUvBinary(uv, ctx.python.path, ctx);
      return [binary];
    },
    async install(ctx: BuildContext): Promise<void> {
      const python = path.join(ctx.venvPath, "bin", "python");
      const exe = ctx.sandbox ? (binary ?? (await resolveUvBinary(uv, ctx.python.path, ctx))) : uv.path;
      const cmd = installCommand(ctx, [
        exe,
        "pip",
        "install",
        "--python",
        python,
        ...indexArgs(ctx.index),
        "--",
        ...ctx.dependencies,
      ]);
      await runChecked(`installing dependencies with uv${ctx.sandbox ? ` (in ${ctx.sandbox.kind})` : ""}`, cmd.argv, {
        env: cmd.env,
        cwd: ctx.cwd,
        signal: ctx.signal,
        onLine: ctx.onLine,
        fds: cmd.fds,
      });
    },
  };
}
