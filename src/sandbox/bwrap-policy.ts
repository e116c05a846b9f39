// Pure: a sandbox policy and the host's paths in, bubblewrap's argv out, built section by section.

import { ConfigError } from "../errors.js";
import { dangerReason } from "./path-guard.js";
import { ALL_NAMESPACES, type NamespaceSupport, type SandboxPolicy } from "./types.js";

/** Host paths one launch needs; everything is bound at the same path inside, so argv and env need no rewriting. */
export interface BwrapPaths {
  /** The Python install the venv points at: realpath of pyvenv.cfg `home`'s parent (see `resolvePythonInstall`). */
  pythonInstall: string | readonly string[];
  venv: string;
  /** Shared runtime layers (venvs) the venv's `.pth` names: read-only, like the venv. */
  sharedRuntimes?: readonly string[];
  /** The extension's own folder: read-only, and the working directory. */
  extensionDir: string;
  /** The guest runtime shipped with this package (the folder holding pyisolate/_guest). */
  runtimeDir: string;
  /** A host folder kept as the extension's private writable HOME; without it HOME is a fresh folder in the private /tmp. */
  home?: string;
  /** Merged-/usr hosts: top-level links such as { "/lib": "usr/lib" }, recreated as links (see `readHostLayout`). */
  systemLinks?: Readonly<Record<string, string>>;
  /** GPU device nodes present on the host (/dev/nvidia0, /dev/nvidiactl, ...), bound only with `gpu: true`. */
  gpuDevices?: readonly string[];
  /**
   * The descriptor (in bwrap's process) of every host path above and of the policy's paths, opened and checked by
   * the host (`PathPins`): each is bound with --ro-bind-fd/--bind-fd, so bwrap never resolves the name again. When
   * given, a path it lacks is an error; without it (tests, doctor) paths are bound by name.
   */
  pinned?: Readonly<Record<string, number>>;
  /** The size of the private /tmp and /dev/shm tmpfs, in bytes (the `diskMiB` limit); unset: the kernel's default, half of RAM. */
  tmpSizeBytes?: number;
}

/** HOME inside the sandbox when the host gives no folder for it. */
export const PRIVATE_HOME = "/tmp/home";
export const SANDBOX_HOSTNAME = "pyisolate";

export const SYSTEM_DIRS = ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"];
/** Only what Python and its common native wheels read from /etc: never the whole of it (passwd, shadow, ssh, ...). */
export const ETC_FOR_PYTHON = [
  "/etc/ld.so.cache", // the dynamic loader's index: without it every shared library is searched for the slow way
  "/etc/ld.so.conf",
  "/etc/ld.so.conf.d",
  "/etc/alternatives", // Debian's links that /usr/bin entries point through
  "/etc/ssl", // CA certificates for ssl/certifi users
  "/etc/ca-certificates",
  "/etc/pki", // Fedora/RHEL's CA store
  "/etc/crypto-policies",
  "/etc/localtime", // time.localtime
  "/etc/mime.types", // mimetypes
];
/** Name resolution: only worth exposing when the extension has the network. */
export const ETC_FOR_NETWORK = [
  "/etc/resolv.conf",
  "/etc/hosts",
  "/etc/nsswitch.conf",
  "/etc/host.conf",
  "/etc/gai.conf",
  "/etc/services",
  "/etc/protocols",
];
/** What CUDA and the NVIDIA driver read under /sys: PCI topology, NUMA nodes, driver parameters. */
export const SYS_FOR_GPU = [
  "/sys/devices",
  "/sys/bus/pci",
  "/sys/class/drm",
  "/sys/dev/char",
  "/sys/module/nvidia",
  "/sys/module/nvidia_uvm",
];

/** Namespaces and process flags: what the extension can see of the host besides files. */
export function namespaceArgs(ns: NamespaceSupport, network: boolean): string[] {
  const args: string[] = [];
  // uid 0 inside is the host user outside: no host capability survives. Absent in degraded mode.
  if (ns.user) args.push("--unshare-user");
  // Host processes are invisible and unsignalable; /proc shows only the sandbox's own.
  if (ns.pid) args.push("--unshare-pid");
  // No System V IPC or POSIX message queues shared with the host.
  if (ns.ipc) args.push("--unshare-ipc");
  // A hostname of its own, so the host's name does not leak and cannot be changed.
  if (ns.uts) args.push("--unshare-uts", "--hostname", SANDBOX_HOSTNAME);
  // Its own cgroup view; "-try" because some kernels and containers lack cgroup namespaces.
  if (ns.cgroup) args.push("--unshare-cgroup-try");
  if (!network) {
    if (!ns.net)
      throw new ConfigError("sandbox.network is false but this host cannot create a network namespace", {
        key: "sandbox.network",
      });
    // An empty network namespace: only a loopback of its own, no route to the host or anywhere else.
    args.push("--unshare-net");
  }
  return args;
}

/** Lifetime and privilege flags. */
export function processArgs(): string[] {
  return [
    "--die-with-parent", // the sandbox dies with the host: no orphans
    "--new-session", // a new session: no TIOCSTI keystroke injection into the host's terminal
    "--cap-drop",
    "ALL", // no capabilities inside, even where bwrap runs as root without a user namespace
  ];
}

/** Fresh kernel filesystems and the private writable places. Must come before any bind that may lie under /tmp. */
export function baseMountArgs(
  home: string | undefined,
  pinned?: Readonly<Record<string, number>>,
  tmpSizeBytes?: number,
): string[] {
  // Both tmpfs live in the host's memory: the diskMiB limit caps each (--size applies to the next --tmpfs only).
  const size = tmpSizeBytes === undefined ? [] : ["--size", String(tmpSizeBytes)];
  const args = [
    "--proc",
    "/proc", // a procfs of the sandbox's pid namespace, not the host's
    "--dev",
    "/dev", // a minimal /dev: null, zero, random, urandom, tty, pts
    ...size,
    "--tmpfs",
    "/dev/shm", // private POSIX shared memory for multiprocessing; host segments stay unreachable
    ...size,
    "--tmpfs",
    "/tmp", // a private, empty /tmp: the host's /tmp is never visible
  ];
  // A private HOME: the host's home is never bound, so ~/.ssh, ~/.aws and the like do not exist inside.
  if (home) args.push(...bindArgs("--bind", home, pinned), "--setenv", "HOME", home);
  else args.push("--dir", PRIVATE_HOME, "--setenv", "HOME", PRIVATE_HOME);
  args.push("--setenv", "TMPDIR", "/tmp");
  return args;
}

/** Read-only system libraries and the few /etc files Python needs. */
export function systemMountArgs(links: Readonly<Record<string, string>> = {}, network = false): string[] {
  const args: string[] = [];
  for (const dir of SYSTEM_DIRS) {
    // On merged-/usr hosts /lib is a link into /usr: recreate the link instead of binding the same tree twice.
    const target = links[dir];
    if (target !== undefined) args.push("--symlink", target, dir);
    else args.push("--ro-bind-try", dir, dir);
  }
  for (const file of network ? [...ETC_FOR_PYTHON, ...ETC_FOR_NETWORK] : ETC_FOR_PYTHON)
    args.push("--ro-bind-try", file, file);
  return args;
}

function isAtOrUnder(p: string, root: string): boolean {
  return p === root || p.startsWith(root.endsWith("/") ? root : `${root}/`);
}

/** One bind of a host path at the same path: by its pinned descriptor when the launch has them, else by name. */
function bindArgs(
  flag: "--bind" | "--ro-bind",
  dir: string,
  pinned: Readonly<Record<string, number>> | undefined,
): string[] {
  if (!pinned) return [flag, dir, dir];
  const fd = pinned[dir];
  if (fd === undefined)
    throw new Error(`buildBwrapArgs: ${dir} would be bound by name; every host path must come pinned`);
  return [`${flag}-fd`, String(fd), dir];
}

/**
 * Pure: the host folders one launch binds (besides the system's), read-only then writable, in bind order. Folders
 * already inside a read-only bind (a Python under /usr) are not bound twice. The caller pins exactly these.
 */
export function bwrapBinds(policy: SandboxPolicy, paths: BwrapPaths): { readOnly: string[]; writable: string[] } {
  const covered: string[] = ["/usr"];
  const readOnly: string[] = [];
  const python = typeof paths.pythonInstall === "string" ? [paths.pythonInstall] : paths.pythonInstall;
  for (const dir of [
    ...python,
    paths.venv,
    ...(paths.sharedRuntimes ?? []),
    paths.runtimeDir,
    paths.extensionDir,
    ...policy.readonlyPaths,
  ]) {
    if (covered.some((r) => isAtOrUnder(dir, r))) continue;
    covered.push(dir);
    readOnly.push(dir);
  }
  return { readOnly, writable: [...(paths.home ? [paths.home] : []), ...policy.writablePaths] };
}

function checkConfigPath(p: string, key: string): void {
  const why = dangerReason(p);
  if (!p.startsWith("/")) throw new ConfigError(`${key}: "${p}" is not absolute`, { key });
  if (why) throw new ConfigError(`${key}: refusing "${p}": ${why}`, { key });
}

/**
 * Pure: the bwrap arguments (without "bwrap" and without "--") for one extension. `namespaces` is what the
 * host's probe showed can be created (`detectSandbox().namespaces`); with `user: false` the result is the
 * degraded mode: no user namespace, filesystem isolation still on. Config paths must already have passed
 * `guardConfigPaths`; they are checked again here by name.
 */
export function buildBwrapArgs(
  policy: SandboxPolicy,
  paths: BwrapPaths,
  namespaces: NamespaceSupport = ALL_NAMESPACES,
): string[] {
  for (const p of policy.writablePaths) checkConfigPath(p, "sandbox.writablePaths");
  for (const p of policy.readonlyPaths) checkConfigPath(p, "sandbox.readonlyPaths");
  const args = [
    ...namespaceArgs(namespaces, policy.network),
    ...processArgs(),
    ...baseMountArgs(paths.home, paths.pinned, paths.tmpSizeBytes),
  ];
  args.push(...systemMountArgs(paths.systemLinks, policy.network));
  // Numeric libraries size their thread pools from /sys/devices/system/cpu; with a GPU all of /sys/devices comes below.
  if (!policy.gpu) args.push("--ro-bind-try", "/sys/devices/system/cpu", "/sys/devices/system/cpu");

  // The interpreter, the venv, the guest runtime and the extension: read-only, so nothing can be planted for the
  // next start. Each by its pinned descriptor: the object the host checked, whatever the name leads to by now.
  const binds = bwrapBinds(policy, paths);
  for (const dir of binds.readOnly) args.push(...bindArgs("--ro-bind", dir, paths.pinned));
  // Only the writable paths the config names, after the read-only binds so that one inside them wins.
  for (const dir of policy.writablePaths) args.push(...bindArgs("--bind", dir, paths.pinned));

  if (policy.gpu) {
    // The NVIDIA device nodes (--dev-bind keeps them usable as devices), the DRM render nodes, and WSL2's /dev/dxg.
    for (const dev of paths.gpuDevices ?? []) args.push("--dev-bind", dev, dev);
    args.push("--dev-bind-try", "/dev/dri", "/dev/dri", "--dev-bind-try", "/dev/dxg", "/dev/dxg");
    for (const dir of SYS_FOR_GPU) args.push("--ro-bind-try", dir, dir);
  }
  // The sandbox's root is a tmpfs that bwrap made: make it read-only once every mount point exists, so that only
  // /tmp, /dev/shm, the home and the configured paths take writes (and nothing fills memory through /etc or /usr).
  args.push("--remount-ro", "/");
  // Start in the extension's folder, as an unsandboxed launch does.
  args.push("--chdir", paths.extensionDir);
  return args;
}

/** Pure: whether a bwrap of this `--version` number takes `--size` (added in 0.7.0); unknown versions are not trusted with it. */
export function bwrapSupportsSize(version: string | undefined): boolean {
  const [major, minor] = (version ?? "").split(".").map(Number);
  return (
    major !== undefined &&
    minor !== undefined &&
    !Number.isNaN(major) &&
    !Number.isNaN(minor) &&
    (major > 0 || minor >= 7)
  );
}

/** The whole command: bwrap, its arguments, then the program to run inside. */
export function wrapWithBwrap(
  bwrapPath: string,
  bwrapArgs: readonly string[],
  command: readonly string[],
): { command: string; args: string[] } {
  return { command: bwrapPath, args: [...bwrapArgs, "--", ...command] };
}
