// Builds the extension's environment from an allow-list: host secrets never reach it by accident.

import { delimiter, join } from "node:path";
import { CUDA_IPC_ENV, isLoaderVariable } from "../config/env-policy.js";

/** Host variables that pass through unchanged: locale and search path only. */
const PASSED_THROUGH = /^(PATH|LANG|LANGUAGE|LC_[A-Z_]+|TZ)$/;

export interface CleanEnvInput {
  hostEnv: NodeJS.ProcessEnv;
  venvPath: string;
  home: string;
  tmpdir: string;
  extra?: Record<string, string>;
  /** CUDA IPC on (the variable set), off (removed, whatever `extra` said) or undefined (`extra` decides). */
  cudaIpc?: boolean;
}

export function buildCleanEnv(input: CleanEnvInput): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(input.hostEnv)) {
    if (value !== undefined && PASSED_THROUGH.test(key)) env[key] = value;
  }
  const hostPath = env.PATH ?? "/usr/local/bin:/usr/bin:/bin";
  env.PATH = [join(input.venvPath, "bin"), hostPath].join(delimiter);
  env.VIRTUAL_ENV = input.venvPath;
  env.HOME = input.home;
  env.TMPDIR = input.tmpdir;
  env.PYISOLATE_CHILD = "1";
  // What the application passes on purpose comes last and wins.
  Object.assign(env, input.extra ?? {});
  // The cudaIpc option is the code's word on CUDA IPC: it overrides an env entry either way.
  if (input.cudaIpc === true) env[CUDA_IPC_ENV] = "1";
  else if (input.cudaIpc === false) delete env[CUDA_IPC_ENV];
  return env;
}

/**
 * Pure: for a launch through bwrap, the environment the bwrap binary itself starts with and the `--setenv` arguments
 * that give the rest to the guest inside. Loader variables (`LD_PRELOAD`, `GCONV_PATH`, ...) the host application set
 * in code are meant for the extension's interpreter: in bwrap's own environment they would run in bwrap, as the host
 * user, before any namespace. They travel on bwrap's command line, where host users can read them with `ps`, so
 * only those move: the rest (possibly secrets) stays in the environment, which only the host user can read.
 */
export function splitEnvForBwrap(env: Record<string, string>): { outer: Record<string, string>; setenv: string[] } {
  const outer: Record<string, string> = {};
  const setenv: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (isLoaderVariable(name)) setenv.push("--setenv", name, value);
    else outer[name] = value;
  }
  return { outer, setenv };
}
