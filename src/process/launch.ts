// Turns a launch request into an argv array: the guest's interpreter, wrapped by bwrap or told its Landlock rules.

import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { wrapWithBwrap } from "../sandbox/bwrap-policy.js";
import { LANDLOCK_ENV } from "../sandbox/landlock-policy.js";
import { splitEnvForBwrap } from "./clean-env.js";
import type { SandboxLaunch } from "../sandbox/prepare.js";

/** The Python guest runtime shipped inside this package. */
export const RUNTIME_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "python");
export const BOOTSTRAP_SCRIPT = join(RUNTIME_ROOT, "pyisolate", "_guest", "bootstrap.py");
/** The launcher that confines itself with Landlock, then execs a command (installs; doctor's CUDA check). */
export const CONFINE_EXEC_SCRIPT = join(RUNTIME_ROOT, "pyisolate", "_guest", "confine_exec.py");

export interface LaunchRequest {
  pythonPath: string;
  modulePath: string;
  env: Record<string, string>;
  /** How to confine the guest, prepared beforehand (all host I/O done); absent means unsandboxed. */
  sandbox?: SandboxLaunch;
}

export interface LaunchCommand {
  command: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  /** Host descriptors of pinned paths the child inherits as FIRST_PINNED_FD, FIRST_PINNED_FD + 1, ... (see `SandboxLaunch`). */
  fds?: readonly number[];
}

/**
 * Pure: the command that starts one guest. `-I` keeps the host's PYTHON* variables, the user site and the
 * current folder out of sys.path; `-S` defers site processing (the venv's site-packages and its `.pth` files)
 * until the bootstrap has applied Landlock, if asked; `-u` makes output unbuffered so lines reach the host as
 * they are written. Under bwrap the same command runs inside; fd 3 (the RPC socket) is inherited through it.
 */
export function buildLaunchCommand(request: LaunchRequest): LaunchCommand {
  const python = [request.pythonPath, "-I", "-S", "-u", BOOTSTRAP_SCRIPT];
  const sandbox = request.sandbox ?? { backend: "none" };
  switch (sandbox.backend) {
    case "bwrap":
    case "bwrap-degraded": {
      // Loader variables reach Python inside through --setenv, never the bwrap binary itself.
      const { outer, setenv } = splitEnvForBwrap(request.env);
      return { ...wrapWithBwrap(sandbox.bwrapPath, [...sandbox.bwrapArgs, ...setenv], python), cwd: request.modulePath, env: outer, fds: sandbox.fds };
    }
    case "landlock":
      return {
        command: python[0]!, args: python.slice(1), cwd: request.modulePath, env: { ...request.env, [LANDLOCK_ENV]: sandbox.rules }, fds: sandbox.fds,
      };
    case "none":
      return { command: python[0]!, args: python.slice(1), cwd: request.modulePath, env: request.env };
  }
}
