// Reads the host for one sandboxed launch (real paths, the Python install, the root's layout, GPU nodes), pins every
// host path it hands on, then calls the pure builders; the result is data that `buildLaunchCommand` turns into argv.

import { realpath } from "node:fs/promises";
import { buildBwrapArgs, bwrapBinds, bwrapSupportsSize, type BwrapPaths } from "./bwrap-policy.js";
import { listGpuDevices, readSystemLinks, resolvePythonInstall } from "./host.js";
import { buildLandlockRules, encodeLandlockRules, landlockHostPaths, type LandlockPaths } from "./landlock-policy.js";
import type { PathPins } from "./pin-set.js";
import type { SandboxBackend, SandboxCapabilities, SandboxPolicy } from "./types.js";

/**
 * How one guest is confined, with every host path already resolved and pinned. `fds` are host descriptors the
 * child must inherit as FIRST_PINNED_FD, FIRST_PINNED_FD + 1, ...: the argv and the rules name those numbers.
 */
export type SandboxLaunch =
  | { backend: "none" }
  | { backend: "bwrap" | "bwrap-degraded"; bwrapPath: string; bwrapArgs: string[]; fds: number[] }
  | { backend: "landlock"; rules: string; fds: number[] };

export interface PrepareInput {
  backend: SandboxBackend;
  /** Detection's result; needed for bwrap (its path and which namespaces work). */
  capabilities: SandboxCapabilities | undefined;
  /** Writable and read-only paths must already have passed `guardConfigPaths` (absolute, symlinks resolved). */
  policy: SandboxPolicy;
  /**
   * The load's pinned paths (the guard pinned the policy's paths as it checked them); the rest are pinned here. The
   * caller closes them once the child is spawned.
   */
  pins: PathPins;
  venv: string;
  /** The venv sees the base interpreter's site-packages (the host's record of how it built the venv). */
  systemSitePackages: boolean;
  /** The shared runtime layer's venv the extension links to, if any: read-only, like its own venv. */
  sharedRuntime?: string;
  /** The base interpreter the host recorded when it built the venv (real path): what the guest runs, never the venv's bin/python. */
  pythonPath: string;
  modulePath: string;
  runtimeDir: string;
  home: string;
  tmpdir: string;
  /** Under bwrap, the size of its private /tmp and /dev/shm (the `diskMiB` limit), bytes. */
  tmpSizeBytes?: number;
  /** Told what the sandbox cannot do here that it does elsewhere (e.g. no socket filter on this architecture). */
  onWarning?: (message: string) => void;
}

/** The venv the guest activates itself, after confinement (see python/pyisolate/_guest/venv_activate.py). */
export interface VenvActivation {
  /** The venv folder as the guest sees it (its real path when sandboxed: bwrap binds real paths). */
  prefix: string;
  systemSitePackages: boolean;
}

export interface PreparedSandbox {
  launch: SandboxLaunch;
  /** The base interpreter to start (the recorded real path: bound as part of the Python install). */
  pythonPath: string;
  venv: VenvActivation;
  /** The extension folder, real path: the guest's working folder and what its loader imports. */
  modulePath: string;
}

export async function prepareSandbox(input: PrepareInput): Promise<PreparedSandbox> {
  const { pythonPath, systemSitePackages } = input;
  if (input.backend === "none") {
    return {
      launch: { backend: "none" },
      pythonPath,
      venv: { prefix: input.venv, systemSitePackages },
      modulePath: input.modulePath,
    };
  }
  const { pins, policy } = input;
  // A writable path the host granted but that does not exist yet is made (inside its pinned parent), then pinned.
  for (const p of policy.writablePaths) pins.ensureDir(p, "sandbox.writablePaths");
  for (const p of policy.readonlyPaths) pins.pin(p, "sandbox.readonlyPaths");
  // The host's own paths: resolved here once, and pinned at once (a path already pinned keeps its first descriptor).
  const [venv, modulePath, runtimeDir, home, tmpdir] = (await Promise.all(
    [input.venv, input.modulePath, input.runtimeDir, input.home, input.tmpdir].map((p) => realpath(p)),
  )) as [string, string, string, string, string];
  for (const [p, key] of [
    [venv, "venv"],
    [modulePath, "modulePath"],
    [runtimeDir, "runtime"],
    [home, "home"],
    [tmpdir, "tmpdir"],
  ] as const)
    pins.pin(p, key);
  // From the host's record, never from the venv's pyvenv.cfg or bin/python (install code could have rewritten both);
  // bound at the spelling the interpreter uses, from the real folder pinned.
  const pythonInstall = await resolvePythonInstall({ python: pythonPath, systemSitePackages });
  for (const dir of pythonInstall) pins.pinSpelling(dir, "python");
  const activation = { prefix: venv, systemSitePackages };
  const sharedRuntimes = input.sharedRuntime ? [await realpath(input.sharedRuntime)] : [];
  for (const dir of sharedRuntimes) pins.pin(dir, "sharedRuntime");
  const gpuDevices = policy.gpu ? await listGpuDevices() : [];

  if (input.backend === "landlock") {
    const paths: LandlockPaths = {
      pythonInstall,
      venv,
      sharedRuntimes,
      extensionDir: modulePath,
      runtimeDir,
      home,
      tmpdir,
      gpuDevices,
    };
    const child = pins.forChild(landlockHostPaths(policy, paths));
    const rules = buildLandlockRules(policy, { ...paths, pinned: child.childFd });
    if (!rules.socketFilter)
      input.onWarning?.(
        `the seccomp socket filter does not know ${process.arch}: under Landlock alone this extension can reach Unix sockets by path and send UDP (docs/sandbox.md)`,
      );
    return {
      launch: { backend: "landlock", rules: encodeLandlockRules(rules), fds: child.hostFds },
      pythonPath,
      venv: activation,
      modulePath,
    };
  }
  const caps = input.capabilities;
  if (!caps?.bwrap) throw new Error(`prepareSandbox: backend ${input.backend} needs detection that found bwrap`);
  // The private HOME is the manager's folder, bound writable at the same path: the same HOME as under Landlock,
  // on disk rather than in memory, and removed at stop. TMPDIR stays the sandbox's own tmpfs /tmp.
  const paths: BwrapPaths = {
    pythonInstall,
    venv,
    sharedRuntimes,
    extensionDir: modulePath,
    runtimeDir,
    home,
    systemLinks: await readSystemLinks(),
    gpuDevices,
    // An older bwrap would refuse the argument and the launch: there the watchdog and RLIMIT_FSIZE stand alone.
    tmpSizeBytes: bwrapSupportsSize(caps.bwrap.version) ? input.tmpSizeBytes : undefined,
  };
  const binds = bwrapBinds(policy, paths);
  // Only what bwrap binds is handed over (it closes each after its mount): no host descriptor reaches the guest.
  const child = pins.forChild([...binds.readOnly, ...binds.writable]);
  const bwrapArgs = buildBwrapArgs(policy, { ...paths, pinned: child.childFd }, caps.namespaces);
  return {
    launch: { backend: input.backend, bwrapPath: caps.bwrap.path, bwrapArgs, fds: child.hostFds },
    pythonPath,
    venv: activation,
    modulePath,
  };
}
