// Reads the host for one sandboxed launch (real paths, the Python install, the root's layout, GPU nodes), then
// hands everything to the pure builders; the result is data that `buildLaunchCommand` turns into argv.

import { mkdir, realpath } from "node:fs/promises";
import { buildBwrapArgs } from "./bwrap-policy.js";
import { listGpuDevices, readSystemLinks, resolvePythonInstall } from "./host.js";
import { buildLandlockRules, encodeLandlockRules } from "./landlock-policy.js";
import type { SandboxBackend, SandboxCapabilities, SandboxPolicy } from "./types.js";

/** How one guest is confined, with every host path already resolved. */
export type SandboxLaunch =
  | { backend: "none" }
  | { backend: "bwrap" | "bwrap-degraded"; bwrapPath: string; bwrapArgs: string[] }
  | { backend: "landlock"; rules: string };

export interface PrepareInput {
  backend: SandboxBackend;
  /** Detection's result; needed for bwrap (its path and which namespaces work). */
  capabilities: SandboxCapabilities | undefined;
  /** Writable and read-only paths must already have passed `guardConfigPaths` (absolute, symlinks resolved). */
  policy: SandboxPolicy;
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
    return { launch: { backend: "none" }, pythonPath, venv: { prefix: input.venv, systemSitePackages }, modulePath: input.modulePath };
  }
  // A writable path the host granted but that does not exist yet is made, so that it can be bound (bwrap) or ruled (Landlock).
  await Promise.all(input.policy.writablePaths.map((p) => mkdir(p, { recursive: true })));
  const [venv, modulePath, runtimeDir, home, tmpdir] = await Promise.all(
    [input.venv, input.modulePath, input.runtimeDir, input.home, input.tmpdir].map((p) => realpath(p)),
  ) as [string, string, string, string, string];
  // From the host's record, never from the venv's pyvenv.cfg or bin/python (install code could have rewritten both).
  const pythonInstall = await resolvePythonInstall({ python: pythonPath, systemSitePackages });
  const activation = { prefix: venv, systemSitePackages };
  const sharedRuntimes = input.sharedRuntime ? [await realpath(input.sharedRuntime)] : [];
  const gpuDevices = input.policy.gpu ? await listGpuDevices() : [];

  if (input.backend === "landlock") {
    const rules = buildLandlockRules(input.policy, { pythonInstall, venv, sharedRuntimes, extensionDir: modulePath, runtimeDir, home, tmpdir, gpuDevices });
    if (!rules.socketFilter) input.onWarning?.(`the seccomp socket filter does not know ${process.arch}: under Landlock alone this extension can reach Unix sockets by path and send UDP (docs/sandbox.md)`);
    return { launch: { backend: "landlock", rules: encodeLandlockRules(rules) }, pythonPath, venv: activation, modulePath };
  }
  const caps = input.capabilities;
  if (!caps?.bwrap) throw new Error(`prepareSandbox: backend ${input.backend} needs detection that found bwrap`);
  // The private HOME is the manager's folder, bound writable at the same path: the same HOME as under Landlock,
  // on disk rather than in memory, and removed at stop. TMPDIR stays the sandbox's own tmpfs /tmp.
  const bwrapArgs = buildBwrapArgs(input.policy, { pythonInstall, venv, sharedRuntimes, extensionDir: modulePath, runtimeDir, home, systemLinks: await readSystemLinks(), gpuDevices }, caps.namespaces);
  return { launch: { backend: input.backend, bwrapPath: caps.bwrap.path, bwrapArgs }, pythonPath, venv: activation, modulePath };
}
