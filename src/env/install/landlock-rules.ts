// Pure: the sandbox for a dependency install on a host where bwrap cannot run, as Landlock rules and a launcher argv.

import { ConfigError } from "../../errors.js";
import { ETC_FOR_NETWORK, ETC_FOR_PYTHON, SYSTEM_DIRS } from "../../sandbox/bwrap-policy.js";
import { SYSTEM_INSTALLER_CONFIG } from "./bwrap-policy.js";
import { DEV_FILES, encodeConfinementRules, socketFilterAvailable } from "../../sandbox/landlock-policy.js";

/**
 * What one Landlock-confined install may touch. Unlike bwrap nothing can be hidden or moved: every path is
 * the host's own, and whatever no rule grants is denied (EACCES) rather than absent.
 */
export interface InstallLandlockPolicy {
  /**
   * false: TCP bind and connect are denied (Landlock ABI 4 or newer; the caller checks the ABI), and the seccomp
   * filter refuses every other socket family too (UDP, raw, netlink).
   */
  network: boolean;
  /**
   * With `network: false`: the index proxy's TCP port on 127.0.0.1, the one port TCP may connect to (a stacked
   * ruleset), and no socket but TCP (a second seccomp filter); see python/pyisolate/_guest/install_net.py.
   */
  proxyPort?: number;
  /** The venv being built: writable, and the working directory. */
  buildDir: string;
  /** The package cache of this install: writable. */
  cacheDir: string;
  /** The install's private HOME and TMPDIR: host folders made for this install alone, removed after it. */
  home: string;
  tmp: string;
  /** Read-only: the Python install, the installer's binary, local indexes and find-links, config files kept in place. */
  readonlyPaths: readonly string[];
  /** Paths the launcher gets as inherited descriptors, pinned by the host (path -> descriptor number): ruled by number. */
  pinned?: Readonly<Record<string, number>>;
}

/** What `confine_exec.py` reads from `LANDLOCK_ENV` (the same variable as the guest's, in its own shape). */
export interface InstallLandlockRules {
  readOnly: string[];
  writable: string[];
  network: boolean;
  /** Always false: installers need no Unix socket (glibc's nscd and libuuid's uuidd lookups fall back without one). */
  unixSockets: false;
  /** Whether confine_exec.py installs the seccomp socket filter (see `socketFilterAvailable`). */
  socketFilter: boolean;
  cwd: string;
  /** See `InstallLandlockPolicy.proxyPort`. */
  proxyPort?: number;
  pinned?: Readonly<Record<string, number>>;
}

/**
 * Which OS release the host runs: pip's user agent reads these through `distro`, which copes with a missing
 * file but not with a denied one (under bwrap they are simply absent). They say nothing about the user.
 */
export const ETC_RELEASE_FILES = [
  "/etc/os-release",
  "/etc/lsb-release",
  "/etc/debian_version",
  "/etc/redhat-release",
  "/etc/system-release",
];

function checkAbsolute(p: string, key: string): void {
  if (!p.startsWith("/")) throw new ConfigError(`install sandbox: ${key} "${p}" is not absolute`, { key: "sandbox" });
}

/**
 * Pure: the rules for one install. Read: the system libraries, the /etc files Python and (with the network)
 * name resolution need, CPU topology, the installers' system-wide config, and `readonlyPaths`. Write: the
 * build folder, the cache, the private home and tmp, and the harmless character devices. The host's home,
 * /tmp, /proc, /dev/shm and the rest of /etc get no rule, so they are denied.
 */
export function buildInstallLandlockRules(policy: InstallLandlockPolicy): InstallLandlockRules {
  for (const [key, p] of Object.entries({
    buildDir: policy.buildDir,
    cacheDir: policy.cacheDir,
    home: policy.home,
    tmp: policy.tmp,
  }))
    checkAbsolute(p, key);
  for (const p of policy.readonlyPaths) checkAbsolute(p, "readonly path");
  if (
    policy.proxyPort !== undefined &&
    (policy.network || !Number.isInteger(policy.proxyPort) || policy.proxyPort < 1 || policy.proxyPort > 65535)
  )
    throw new ConfigError(`install sandbox: proxy port ${policy.proxyPort} needs network: false and a TCP port`, {
      key: "sandbox.network",
    });
  const readOnly = [
    ...SYSTEM_DIRS,
    ...ETC_FOR_PYTHON,
    ...ETC_RELEASE_FILES,
    ...(policy.network ? ETC_FOR_NETWORK : []),
    // uv and pip size their worker pools from the CPU list.
    "/sys/devices/system/cpu",
    ...SYSTEM_INSTALLER_CONFIG,
    ...policy.readonlyPaths,
  ];
  const writable = [policy.buildDir, policy.cacheDir, policy.home, policy.tmp, ...DEV_FILES];
  return {
    readOnly: [...new Set(readOnly)],
    writable: [...new Set(writable)],
    network: policy.network,
    unixSockets: false,
    socketFilter: socketFilterAvailable(),
    cwd: policy.buildDir,
    ...(policy.proxyPort !== undefined ? { proxyPort: policy.proxyPort } : {}),
    ...(policy.pinned ? { pinned: policy.pinned } : {}),
  };
}

/** The rules as the one-line JSON `confine_exec.py` reads. */
export function encodeInstallLandlockRules(rules: InstallLandlockRules): string {
  // proxy_port is confine_exec.py's own field (install_net.py), beside the fields every confining script reads.
  const extra = { cwd: rules.cwd, ...(rules.proxyPort !== undefined ? { proxy_port: rules.proxyPort } : {}) };
  return encodeConfinementRules(rules, extra);
}

/**
 * Pure: the launcher's argv around an installer's. `-I -S`: no user site, no PYTHON* variables, no site
 * processing, so nothing but the interpreter and the launcher runs before the rules are in force.
 */
export function wrapWithConfineExec(python: string, script: string, argv: readonly string[]): string[] {
  checkAbsolute(python, "python");
  checkAbsolute(script, "launcher");
  if (!argv[0]?.startsWith("/"))
    throw new ConfigError(`install sandbox: the installer "${argv[0] ?? ""}" is not an absolute path`, {
      key: "sandbox",
    });
  return [python, "-I", "-S", script, "--", ...argv];
}
