// What a venv backend (uv, or venv + pip) must do, the index flags both share, and how one is chosen.

import { ConfigError } from "../errors.js";
import type { Installer } from "../vocabulary.js";
import type { InstallSandbox } from "./install-sandbox.js";
import type { PythonInfo } from "./python.js";
import { findUv } from "./uv.js";
import { uvBackend } from "./uv.js";
import { pipBackend } from "./pip.js";

/** Where packages come from; null/empty means the backend's own default (and, for pip, its config). */
export interface IndexOptions {
  indexUrl: string | null;
  extraIndexUrls: string[];
  findLinks: string[];
}

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

export interface Backend {
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
export function installCommand(ctx: BuildContext, argv: string[]): { argv: string[]; env: NodeJS.ProcessEnv; fds?: readonly number[] } {
  return ctx.sandbox ? { argv: ctx.sandbox.wrap(argv), env: ctx.sandbox.env, fds: ctx.sandbox.fds } : { argv, env: ctx.env };
}

/** The index flags, which uv pip and pip spell the same way. */
export function indexArgs(index: IndexOptions): string[] {
  const args: string[] = [];
  if (index.indexUrl) args.push("--index-url", index.indexUrl);
  for (const url of index.extraIndexUrls) args.push("--extra-index-url", url);
  for (const dir of index.findLinks) args.push("--find-links", dir);
  return args;
}

/** auto: uv when it is on PATH and runs, else venv + pip. */
export async function selectBackend(choice: Installer, env: NodeJS.ProcessEnv): Promise<Backend> {
  if (choice === "pip") return pipBackend();
  const uv = await findUv(env);
  if (uv) return uvBackend(uv);
  if (choice === "uv") {
    throw new ConfigError(
      'installer "uv" was requested but no working uv was found on PATH (install it with `pip install uv` or use installer "pip")',
      { key: "installer" },
    );
  }
  return pipBackend();
}
