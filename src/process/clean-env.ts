// Builds the extension's environment from an allow-list: host secrets never reach it by accident.

import { delimiter, join } from "node:path";

/** Host variables that pass through unchanged: locale and search path only. */
const PASSED_THROUGH = /^(PATH|LANG|LANGUAGE|LC_[A-Z_]+|TZ)$/;

export interface CleanEnvInput {
  hostEnv: NodeJS.ProcessEnv;
  venvPath: string;
  home: string;
  tmpdir: string;
  extra?: Record<string, string>;
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
  return env;
}
