// Pure: the sandbox for a dependency install (uv or pip running an sdist's untrusted build code) as bwrap's argv.

import { ConfigError } from "../../errors.js";
import {
  baseMountArgs,
  namespaceArgs,
  PRIVATE_HOME,
  processArgs,
  systemMountArgs,
} from "../../sandbox/bwrap-policy.js";
import { ALL_NAMESPACES, type NamespaceSupport } from "../../sandbox/types.js";

/** A host file shown inside the sandbox at another path (a user config file moved into the private HOME). */
export interface MappedFile {
  host: string;
  inside: string;
}

/** What one install may touch; everything else of the host is absent inside. */
export interface InstallSandboxPolicy {
  /** Share the host's network (the registries). false: an empty network namespace, for local-only indexes. */
  network: boolean;
  /** The venv being built (its temporary folder): writable, and the working directory. */
  buildDir: string;
  /** The package cache of this install: writable. */
  cacheDir: string;
  /** Bound read-only at the same path: the Python install, the installer's binary, local indexes and find-links. */
  readonlyPaths: readonly string[];
  /** Installer config files, read-only, each at its inside path (missing ones are skipped). */
  configFiles: readonly MappedFile[];
  /** Merged-/usr hosts: top-level links such as { "/lib": "usr/lib" } (see `readSystemLinks`). */
  systemLinks?: Readonly<Record<string, string>>;
  /**
   * Descriptors (in bwrap's process) of the build folder, the cache and the read-only paths, pinned by the host: bound
   * with --bind-fd/--ro-bind-fd, never by name. A read-only path without one is left out (it did not exist when pinned).
   */
  pinned?: Readonly<Record<string, number>>;
}

/** System-wide installer config, read in place when present: pip's global files and uv's system file. */
export const SYSTEM_INSTALLER_CONFIG = [
  "/etc/pip.conf",
  "/etc/xdg/pip/pip.conf",
  "/etc/uv/uv.toml",
  "/etc/xdg/uv/uv.toml",
];

/** HOME inside an install sandbox (a folder in the private /tmp; the host's home is never bound). */
export const INSTALL_HOME = PRIVATE_HOME;

function isAtOrUnder(p: string, root: string): boolean {
  return p === root || p.startsWith(root.endsWith("/") ? root : `${root}/`);
}

function checkAbsolute(p: string, key: string): void {
  if (!p.startsWith("/")) throw new ConfigError(`install sandbox: ${key} "${p}" is not absolute`, { key: "sandbox" });
}

/** Pure: the read-only host paths one install binds, in order; those inside another (or under /usr) are not bound twice. */
export function installReadOnlyBinds(policy: Pick<InstallSandboxPolicy, "readonlyPaths">): string[] {
  const covered: string[] = ["/usr"];
  const out: string[] = [];
  for (const dir of policy.readonlyPaths) {
    if (covered.some((r) => isAtOrUnder(dir, r))) continue;
    covered.push(dir);
    out.push(dir);
  }
  return out;
}

/**
 * Pure: the bwrap arguments (without "bwrap" and "--") for one install. `namespaces` is what the host's probe
 * showed can be created; with `user: false` it is the degraded mode (filesystem isolation still on). Paths
 * must be absolute and already vetted by the caller (see src/env/install/config.ts).
 */
export function buildInstallBwrapArgs(
  policy: InstallSandboxPolicy,
  namespaces: NamespaceSupport = ALL_NAMESPACES,
): string[] {
  checkAbsolute(policy.buildDir, "buildDir");
  checkAbsolute(policy.cacheDir, "cacheDir");
  for (const p of policy.readonlyPaths) checkAbsolute(p, "readonly path");
  for (const f of policy.configFiles) {
    checkAbsolute(f.host, "config file");
    checkAbsolute(f.inside, "config file");
  }
  // Network namespace only when asked for none: registries need the host's network and its resolver files.
  const args = [...namespaceArgs(namespaces, policy.network), ...processArgs()];
  // Private /proc, /dev, /tmp and HOME: the host's home and /tmp are never visible, ~/.cache is not needed.
  args.push(...baseMountArgs(undefined));
  args.push(...systemMountArgs(policy.systemLinks, policy.network));
  // uv and pip size their worker pools from the CPU list.
  args.push("--ro-bind-try", "/sys/devices/system/cpu", "/sys/devices/system/cpu");
  // The installer's system-wide config (pip.conf may name the local indexes bound below).
  for (const file of SYSTEM_INSTALLER_CONFIG) args.push("--ro-bind-try", file, file);

  // Read-only: the interpreter, the installer, local indexes. Folders already inside a read-only bind are not bound twice.
  // Pinned ones by descriptor (the object the host checked); without pins by name, skipped when missing.
  const pinned = policy.pinned;
  for (const dir of installReadOnlyBinds(policy)) {
    if (!pinned) args.push("--ro-bind-try", dir, dir);
    else if (pinned[dir] !== undefined) args.push("--ro-bind-fd", String(pinned[dir]), dir);
  }
  // The user's config files, moved into the private HOME (or kept at their path when outside the home).
  for (const f of policy.configFiles) args.push("--ro-bind-try", f.host, f.inside);
  // The only writable host folders, after the read-only binds so that they win where they nest.
  for (const dir of [policy.buildDir, policy.cacheDir]) {
    if (!pinned) args.push("--bind", dir, dir);
    else if (pinned[dir] !== undefined) args.push("--bind-fd", String(pinned[dir]), dir);
    else throw new Error(`buildInstallBwrapArgs: ${dir} would be bound by name; it must come pinned`);
  }
  // Start in the venv being built: never in a folder whose pyproject.toml or setup.py the installer could pick up.
  args.push("--chdir", policy.buildDir);
  return args;
}
