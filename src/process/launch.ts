// Turns a launch request into an argv array: the one place where a sandbox wrapper will plug in.

import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

/** The Python guest runtime shipped inside this package. */
export const RUNTIME_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "python");
export const BOOTSTRAP_SCRIPT = join(RUNTIME_ROOT, "pyisolate", "_guest", "bootstrap.py");

export interface LaunchRequest {
  pythonPath: string;
  modulePath: string;
  env: Record<string, string>;
}

export interface LaunchCommand {
  command: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
}

/**
 * Pure: the command that starts one guest. `-I` keeps the host's PYTHON* variables, the user site and the
 * current folder out of sys.path; `-u` makes output unbuffered so lines reach the host as they are written.
 */
export function buildLaunchCommand(request: LaunchRequest): LaunchCommand {
  return {
    command: request.pythonPath,
    args: ["-I", "-u", BOOTSTRAP_SCRIPT],
    cwd: request.modulePath,
    env: request.env,
  };
}
