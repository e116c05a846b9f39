// What a venv installer (uv, or venv + pip) must do, and how an install command runs confined or not.

import type { IndexOptions } from "./index-options.js";
import type { InstallSandbox } from "./install/sandbox.js";
import type { PythonInfo } from "./python.js";

/** One build of one venv, in its temporary folder. */
export interface BuildContext {
  python: PythonInfo;
  /** The temporary venv folder: does not exist before `createVenv`. */
  venvPath: string;
  /** The name activators show (the final folder's name, not the temporary one's). */
  prompt: string;
  dependencies: string[];
  index: IndexOptions;
  /** Create the venv with `--system-site-packages` (the base interpreter's packages importable after its own); default false. */
  systemSitePackages?: boolean;
  env: NodeJS.ProcessEnv;
  /** Working directory for the commands (venvRoot: away from any project files in the host's cwd). */
  cwd: string;
  signal?: AbortSignal;
  onLine: (line: string) => void;
  /** Set for the install step when it runs confined: wrap its argv and use its environment. */
  sandbox?: InstallSandbox;
}

export interface VenvInstaller {
  readonly name: "uv" | "pip";
  /** Shown in progress messages, e.g. "uv 0.13.9". */
  readonly description: string;
  createVenv(ctx: BuildContext): Promise<void>;
  /** Executables outside the Python install that `install` runs (uv's real binary), for the install sandbox to bind. */
  installTools(ctx: BuildContext): Promise<string[]>;
  /** Install `ctx.dependencies` (never called with none); inside `ctx.sandbox` when it is set. */
  install(ctx: BuildContext): Promise<void>;
}

/** The argv and environment one install command runs with: as given, or wrapped in the install sandbox. */
export function installCommand(
  ctx: BuildContext,
  argv: string[],
): { argv: string[]; env: NodeJS.ProcessEnv; fds?: readonly number[] } {
  return ctx.sandbox
    ? { argv: ctx.sandbox.wrap(argv), env: ctx.sandbox.env, fds: ctx.sandbox.fds }
    : { argv, env: ctx.env };
}
