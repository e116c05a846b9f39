// Turns a launch request into an argv array: the guest's interpreter, wrapped by bwrap or told its Landlock rules.

import { wrapWithBwrap } from "../sandbox/bwrap-policy.js";
import { LANDLOCK_ENV } from "../sandbox/landlock-policy.js";
import { availableParallelism, release } from "node:os";
import { nprocSlack, RLIMITS_ENV, rlimitsEnv } from "../limits/rlimits.js";
import type { ResourceLimits } from "../limits/types.js";
import { splitEnvForBwrap } from "./clean-env.js";
import { BOOTSTRAP_SCRIPT } from "../runtime-paths.js";
import type { SandboxLaunch, VenvActivation } from "../sandbox/prepare.js";

/** "1": the guest forks its supervisor, which kills every process the extension started when it ends (no PID namespace). */
export const SUPERVISE_ENV = "PYISOLATE_SUPERVISE";
/** "1": under bwrap, the guest drops its capabilities and installs the seccomp filter's process rules itself. */
export const PROCESS_FILTER_ENV = "PYISOLATE_PROCESS_FILTER";
/** Names the venv the guest activates after confinement (JSON `{prefix, system_site_packages}`); popped at once. */
export const VENV_ENV = "PYISOLATE_VENV";

export interface LaunchRequest {
  /** The base interpreter the host recorded for the venv: install code can rewrite the venv's bin/python, never this. */
  pythonPath: string;
  /** The venv to activate inside; absent: the interpreter's own site processing (a venv's bin/python run directly). */
  venv?: VenvActivation;
  modulePath: string;
  env: Record<string, string>;
  /** How to confine the guest, prepared beforehand (all host I/O done); absent means unsandboxed. */
  sandbox?: SandboxLaunch;
  /** The extension's resource limits: those the kernel enforces per process go to the guest as rlimits. */
  limits?: ResourceLimits;
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
 * Pure: the command that starts one guest. The interpreter is the base one the host recorded, not the venv's
 * bin/python: starting that would read the venv's pyvenv.cfg (its `home` picks the stdlib) before any confinement.
 * `-I` keeps the host's PYTHON* variables, the user site and the current folder out of sys.path; `-S` defers site
 * processing (the venv's site-packages and its `.pth` files) until the bootstrap has applied Landlock, if asked,
 * and activated the venv named in PYISOLATE_VENV; `-u` makes output unbuffered so lines reach the host as they
 * are written. Under bwrap the same command runs inside; fd 3 (the RPC socket) is inherited through it.
 */
export function buildLaunchCommand(request: LaunchRequest): LaunchCommand {
  const python = [request.pythonPath, "-I", "-S", "-u", BOOTSTRAP_SCRIPT];
  const sandbox = request.sandbox ?? { backend: "none" };
  // The host's own switches: whatever the request's env says of them (an extension's config file) is replaced.
  const {
    [SUPERVISE_ENV]: _s,
    [PROCESS_FILTER_ENV]: _p,
    [LANDLOCK_ENV]: _l,
    [RLIMITS_ENV]: _r,
    ...userEnv
  } = request.env;
  const appEnv = {
    ...userEnv,
    ...rlimitsEnv(
      request.limits,
      "bwrapArgs" in sandbox
        ? nprocSlack({
            ownUserNamespace: sandbox.bwrapArgs.includes("--unshare-user"),
            uid: process.getuid?.(),
            kernelRelease: release(),
            cpus: availableParallelism(),
          })
        : undefined,
    ),
  };
  // Set last: the application's env cannot point the guest at another venv.
  const env = request.venv
    ? {
        ...appEnv,
        [VENV_ENV]: JSON.stringify({
          prefix: request.venv.prefix,
          system_site_packages: request.venv.systemSitePackages,
        }),
      }
    : appEnv;
  // Without bwrap's PID namespace the guest's supervisor is what keeps a daemon from outliving the extension.
  const supervised = { ...env, [SUPERVISE_ENV]: "1" };
  switch (sandbox.backend) {
    case "bwrap":
    case "bwrap-degraded": {
      // Loader variables reach Python inside through --setenv, never the bwrap binary itself.
      const { outer, setenv } = splitEnvForBwrap({ ...env, [PROCESS_FILTER_ENV]: "1" });
      return {
        ...wrapWithBwrap(sandbox.bwrapPath, [...sandbox.bwrapArgs, ...setenv], python),
        cwd: request.modulePath,
        env: outer,
        fds: sandbox.fds,
      };
    }
    case "landlock":
      return {
        command: python[0]!,
        args: python.slice(1),
        cwd: request.modulePath,
        env: { ...supervised, [LANDLOCK_ENV]: sandbox.rules },
        fds: sandbox.fds,
      };
    case "none":
      return { command: python[0]!, args: python.slice(1), cwd: request.modulePath, env: supervised };
  }
}
