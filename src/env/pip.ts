// The pip installer: `python -m venv --without-pip`, then the base interpreter's pip installs into it with --python.

import path from "node:path";
import type { VenvInstaller, BuildContext } from "./installer.js";
import { installCommand } from "./installer.js";
import { indexArgs } from "./index-options.js";
import { runChecked, runCommand } from "./run.js";

/** pip gained `--python` (install into another interpreter's environment) in 22.3. */
const PIP_PYTHON_OPTION: readonly [number, number] = [22, 3];

/** The base interpreter's pip version, or undefined when it has none. */
export async function basePipVersion(
  python: string,
  ctx: Pick<BuildContext, "env" | "cwd" | "signal">,
): Promise<string | undefined> {
  const r = await runCommand([python, "-m", "pip", "--version"], {
    env: ctx.env,
    cwd: ctx.cwd,
    signal: ctx.signal,
    timeoutMs: 60_000,
  });
  return r.exitCode === 0 ? /^pip (\d+(\.\d+)*)/.exec(r.stdout.trim())?.[1] : undefined;
}

function supportsPythonOption(version: string | undefined): boolean {
  if (!version) return false;
  const [major = 0, minor = 0] = version.split(".").map(Number);
  return major > PIP_PYTHON_OPTION[0] || (major === PIP_PYTHON_OPTION[0] && minor >= PIP_PYTHON_OPTION[1]);
}

const PIP_QUIET_ARGS = ["--disable-pip-version-check", "--no-input"];
const INSTALL_ARGS = ["--progress-bar", "off"];

export interface PipInstallerOptions {
  /** Seed pip into the venv and install with it, even when the base interpreter's pip could do it. */
  seedPip?: boolean;
}

/** A VenvInstaller that uses the venv module and pip. */
export function pipInstaller(options: PipInstallerOptions = {}): VenvInstaller {
  // Decided in createVenv: use the base interpreter's pip (venv stays pip-free) or a pip seeded into the venv.
  let useBasePip = true;
  return {
    name: "pip",
    description: "venv + pip",
    async createVenv(ctx: BuildContext): Promise<void> {
      const run = { env: ctx.env, cwd: ctx.cwd, signal: ctx.signal, onLine: ctx.onLine };
      useBasePip =
        !options.seedPip &&
        (ctx.dependencies.length === 0 || supportsPythonOption(await basePipVersion(ctx.python.path, ctx)));
      // --prompt: otherwise the activators would show the temporary folder's name.
      const argv = [
        ctx.python.path,
        "-m",
        "venv",
        "--prompt",
        ctx.prompt,
        ...(useBasePip ? ["--without-pip"] : []),
        ...(ctx.systemSitePackages ? ["--system-site-packages"] : []),
        ctx.venvPath,
      ];
      await runChecked("creating the venv", argv, run);
    },
    async installTools(): Promise<string[]> {
      // The base interpreter's pip lives in the Python install, which the sandbox binds anyway.
      return [];
    },
    async install(ctx: BuildContext): Promise<void> {
      const target = path.join(ctx.venvPath, "bin", "python");
      const pip = useBasePip
        ? [ctx.python.path, "-m", "pip", ...PIP_QUIET_ARGS, "--python", target]
        : [target, "-m", "pip", ...PIP_QUIET_ARGS];
      const cmd = installCommand(ctx, [
        ...pip,
        "install",
        ...INSTALL_ARGS,
        ...indexArgs(ctx.index),
        "--",
        ...ctx.dependencies,
      ]);
      const run = { env: cmd.env, cwd: ctx.cwd, signal: ctx.signal, onLine: ctx.onLine, fds: cmd.fds };
      await runChecked(
        `installing dependencies with pip${ctx.sandbox ? ` (in ${ctx.sandbox.kind})` : ""}`,
        cmd.argv,
        run,
      );
    },
  };
}
