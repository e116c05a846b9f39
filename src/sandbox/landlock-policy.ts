// A sandbox policy and the host's paths in, the guest's Landlock rules out (read-only paths, writable paths, TCP, and
// what its seccomp filter lets socket() make). Pure, but for one read of /proc/self/status (does the kernel have seccomp).

import { readFileSync } from "node:fs";
import { ETC_FOR_NETWORK, ETC_FOR_PYTHON, SYS_FOR_GPU, SYSTEM_DIRS } from "./bwrap-policy.js";
import type { SandboxPolicy } from "./types.js";

/** The environment variable that carries the rules to `bootstrap.py` (read, then removed, before confinement). */
export const LANDLOCK_ENV = "PYISOLATE_LANDLOCK";

/** Host paths one Landlock launch needs. Unlike bwrap nothing is hidden by a mount: what no rule grants is denied. */
export interface LandlockPaths {
  pythonInstall: readonly string[];
  venv: string;
  /** Shared runtime layers (venvs) the venv's `.pth` names: read-only, like the venv. */
  sharedRuntimes?: readonly string[];
  extensionDir: string;
  runtimeDir: string;
  /** The extension's private HOME and TMPDIR (made by the manager, removed at stop): its only writable places by default. */
  home: string;
  tmpdir: string;
  gpuDevices?: readonly string[];
  /**
   * The descriptor (in the guest) of each host path above and of the policy's paths, opened and checked by the host
   * (`PathPins`): the guest rules that object and never opens the name. When given, a path it lacks is an error.
   */
  pinned?: Readonly<Record<string, number>>;
}

/**
 * What `bootstrap.py` hands to `landlock.confine()` and `seccomp.install()`, plus the package to import without
 * listing its parent folder.
 */
export interface LandlockRules {
  readOnly: string[];
  writable: string[];
  /** false: Landlock denies TCP, and the seccomp filter refuses every socket family but Unix pairs (UDP, raw, netlink). */
  network: boolean;
  /**
   * Whether `socket(AF_UNIX)` may be made. Landlock does not police connect() to a Unix socket by path
   * (/run/docker.sock), so the seccomp filter refuses the socket itself; Unix stream pairs stay allowed.
   */
  unixSockets: boolean;
  /** Whether the guest installs the seccomp socket filter: only where it knows the architecture's system calls. */
  socketFilter: boolean;
  /** The extension package folder: its parent is not readable, so the guest imports it by location. */
  packageDir: string;
  /** Paths the guest gets as inherited descriptors (path -> descriptor number): the rules name the number. */
  pinned?: Readonly<Record<string, number>>;
}

/** Node's names of the architectures whose system calls the guest's seccomp socket filter knows (x86_64, aarch64). */
const SOCKET_FILTER_ARCHES: ReadonlySet<string> = new Set(["x64", "arm64"]);

/** Whether this kernel has seccomp (its status line is missing without CONFIG_SECCOMP); read once. */
let kernelHasSeccomp: boolean | undefined;
function seccompInKernel(): boolean {
  if (kernelHasSeccomp === undefined) {
    try {
      kernelHasSeccomp = /^Seccomp:/m.test(readFileSync("/proc/self/status", "utf8"));
    } catch {
      kernelHasSeccomp = true; // no /proc to ask: let the guest try, and fail loudly if it cannot
    }
  }
  return kernelHasSeccomp;
}

/**
 * Whether Landlock's companion socket filter can run: an architecture whose system calls it knows, on a kernel with
 * seccomp. Elsewhere Landlock runs alone, with the gaps it had before the filter (Unix sockets by path, UDP), and the
 * launch logs a warning. `arch` is for tests; a given `arch` skips the kernel check.
 */
export function socketFilterAvailable(arch?: string): boolean {
  if (arch !== undefined) return SOCKET_FILTER_ARCHES.has(arch);
  return SOCKET_FILTER_ARCHES.has(process.arch) && seccompInKernel();
}

/** Character devices every process expects to open for reading and writing. */
export const DEV_FILES = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"];

/**
 * Pure: the rules for one extension. Reading is granted to the system libraries, the few /etc files Python
 * needs, the interpreter, the venv, the guest runtime and the extension folder; writing only to the private
 * home and tmp and to the writable paths the config names (already checked by `guardConfigPaths`). /proc, /sys
 * (beyond CPU topology), /home, /root, /tmp and the rest of /etc get no rule, so they are denied.
 */
/** Pure: the host paths of one launch that are not fixed system paths: what the host pins and hands over as descriptors. */
export function landlockHostPaths(policy: SandboxPolicy, paths: LandlockPaths): string[] {
  const all = [
    ...paths.pythonInstall,
    paths.venv,
    ...(paths.sharedRuntimes ?? []),
    paths.runtimeDir,
    paths.extensionDir,
    ...policy.readonlyPaths,
    paths.home,
    paths.tmpdir,
    ...policy.writablePaths,
  ];
  return [...new Set(all)];
}

export function buildLandlockRules(policy: SandboxPolicy, paths: LandlockPaths, arch?: string): LandlockRules {
  if (paths.pinned) {
    const missing = landlockHostPaths(policy, paths).filter((p) => paths.pinned![p] === undefined);
    if (missing.length)
      throw new Error(
        `buildLandlockRules: ${missing.join(", ")} would be ruled by name; every host path must come pinned`,
      );
  }
  const readOnly = [
    ...SYSTEM_DIRS,
    ...ETC_FOR_PYTHON,
    ...(policy.network ? ETC_FOR_NETWORK : []),
    ...(policy.gpu ? SYS_FOR_GPU : ["/sys/devices/system/cpu"]),
    // CPU model and features, as bwrap's /proc shows them: torch's cpuinfo reads it to pick its kernels ("Error in
    // cpuinfo: failed to parse processor information from /proc/cpuinfo" without it). Nothing of any process.
    "/proc/cpuinfo",
    ...paths.pythonInstall,
    paths.venv, // read-only at run time: nothing can be planted for the next start (a .pth file, a patched module)
    ...(paths.sharedRuntimes ?? []), // read-only too: one extension must not plant code that another one imports
    paths.runtimeDir,
    paths.extensionDir,
    ...policy.readonlyPaths,
  ];
  const writable = [paths.home, paths.tmpdir, ...policy.writablePaths, ...DEV_FILES];
  // The CUDA driver writes under /proc/self at initialisation (without it: "Error 304: OS call failed", measured on
  // an H200 with torch 2.11). The rule is taken on the confining process's own /proc/<pid>, nothing of the host's.
  // torch's CUDA IPC creates its reference-counter file in /dev/shm when a tensor is shared ("unable to open shared
  // memory object ... Permission denied" without it, measured on the H200). Landlock has no private /dev/shm to give,
  // so a GPU extension shares the host's (bwrap mounts a private one).
  if (policy.gpu) writable.push(...(paths.gpuDevices ?? []), "/dev/dri", "/dev/dxg", "/proc/self", "/dev/shm");
  // Unix sockets only with the GPU: the CUDA driver's initialisation needs socket(AF_UNIX) (nvidia-persistenced, the
  // MPS daemon). Refused, torch.cuda.is_available() is silently False ("Error 304: OS call failed", measured on an
  // H200 with a filter that refused nothing else). A GPU extension under Landlock keeps the by-path gap, and so does
  // one given `unixSockets` (multiprocessing's Manager and forkserver, fd passing between workers).
  const unixSockets = policy.gpu || policy.unixSockets;
  return {
    readOnly: [...new Set(readOnly)],
    writable: [...new Set(writable)],
    network: policy.network,
    unixSockets,
    socketFilter: socketFilterAvailable(arch),
    packageDir: paths.extensionDir,
    ...(paths.pinned ? { pinned: paths.pinned } : {}),
  };
}

/** What every confining script reads from `LANDLOCK_ENV` (bootstrap.py and confine_exec.py), in their spelling. */
export type ConfinementRules = Pick<
  LandlockRules,
  "readOnly" | "writable" | "network" | "unixSockets" | "socketFilter" | "pinned"
>;

/**
 * `rules` as the one-line JSON of `LANDLOCK_ENV`, with the fields one script adds (`package_dir`, `cwd`). A pinned
 * path is written as its descriptor number: the guest rules the inherited descriptor and never resolves the name.
 */
export function encodeConfinementRules(rules: ConfinementRules, extra: { package_dir?: string; cwd?: string }): string {
  const byFd = (list: readonly string[]): (string | number)[] => list.map((p) => rules.pinned?.[p] ?? p);
  return JSON.stringify({
    read_only: byFd(rules.readOnly),
    writable: byFd(rules.writable),
    network: rules.network,
    unix_sockets: rules.unixSockets,
    socket_filter: rules.socketFilter,
    ...extra,
  });
}

/** The rules as the one-line JSON the guest reads from `LANDLOCK_ENV`. */
export function encodeLandlockRules(rules: LandlockRules): string {
  return encodeConfinementRules(rules, { package_dir: rules.packageDir });
}
