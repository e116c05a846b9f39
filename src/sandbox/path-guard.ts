// Refuses config paths that would open the house to an extension: system trees, the host's home and tmp, their parents.

import { lstat, readlink, realpath } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import path from "node:path";
import { ConfigError } from "../errors.js";
import type { PathPins } from "./pin-set.js";

/** Granting one of these, or any folder above one, hands over a whole tree of other people's files. */
const NEVER_AT_OR_ABOVE = ["/", "/home", "/root", "/tmp", "/var", "/mnt", "/media", "/srv", "/opt", "/usr"];
/** Nothing at or below these: the system's configuration, kernel interfaces and devices. */
const NEVER_INSIDE = ["/etc", "/proc", "/sys", "/run", "/dev", "/boot", "/var/run"];
/** Credential folders of the host user: refused at or below, wherever the home is. */
const HOME_SECRETS = [".ssh", ".gnupg", ".aws", ".azure", ".kube", ".docker", ".config/gcloud", ".netrc", ".pypirc"];

export interface HostDirs {
  home: string;
  tmp: string;
}

function hostDirs(): HostDirs {
  return { home: homedir(), tmp: tmpdir() };
}

function isAtOrUnder(p: string, root: string): boolean {
  return p === root || root === "/" || p.startsWith(`${root}/`);
}

/**
 * Pure: why `p` (absolute, normalised) must not be granted, or undefined when it may be. Checks the path as
 * written; `guardConfigPaths` also checks where symlinks lead.
 */
export function dangerReason(p: string, host: HostDirs = { home: "", tmp: "/tmp" }): string | undefined {
  const atOrAbove = [...NEVER_AT_OR_ABOVE, host.home, host.tmp].filter((d) => d && path.isAbsolute(d));
  for (const d of atOrAbove) {
    if (isAtOrUnder(d, p)) return p === d ? `it is ${d}` : `it contains ${d}`;
  }
  for (const d of NEVER_INSIDE) {
    if (isAtOrUnder(p, d)) return `it is inside ${d}`;
  }
  for (const s of host.home ? HOME_SECRETS : []) {
    const secret = path.join(host.home, s);
    if (isAtOrUnder(p, secret) || isAtOrUnder(secret, p)) return `it exposes ${secret}`;
  }
  return undefined;
}

/** Resolve symlinks as far as the path exists; the missing rest is joined on as written. */
async function resolveExisting(p: string): Promise<string> {
  const missing: string[] = [];
  let current = p;
  for (;;) {
    try {
      return path.join(await realpath(current), ...missing);
    } catch {
      // A dangling symlink still says where it points: follow it rather than trust its own name.
      const target = await lstat(current).then(
        (s) => (s.isSymbolicLink() ? readlink(current) : undefined),
        () => undefined,
      );
      if (target !== undefined) {
        current = path.resolve(path.dirname(current), target);
        continue;
      }
      const parent = path.dirname(current);
      if (parent === current) return path.join(current, ...missing);
      missing.unshift(path.basename(current));
      current = parent;
    }
  }
}

export interface GuardOptions {
  /** Folder that relative paths are relative to (the config file's folder); relative paths are refused without it. */
  base?: string;
  host?: HostDirs;
  /**
   * Where to hold each checked path open: the sandbox then binds or rules that descriptor, never the name again.
   * A path that does not exist yet is not pinned here (a writable folder is created, pinned, by `prepareSandbox`).
   */
  pins?: PathPins;
}

/**
 * Check every path of one config key (e.g. "sandbox.writablePaths"); returns them absolute and with symlinks
 * resolved, which is what the bwrap policy should bind. With `options.pins` each existing one is opened right after its
 * check and proved to be the object at the checked path, so what is bound later is what was checked here.
 * Throws a ConfigError naming the first bad path.
 */
export async function guardConfigPaths(
  paths: readonly string[],
  key: string,
  options: GuardOptions = {},
): Promise<string[]> {
  const host = options.host ?? hostDirs();
  const out: string[] = [];
  for (const raw of paths) {
    if (typeof raw !== "string" || raw.trim() === "") throw new ConfigError(`${key}: empty path`, { key });
    if (!path.isAbsolute(raw) && options.base === undefined) {
      throw new ConfigError(`${key}: "${raw}" is relative; give an absolute path`, { key });
    }
    const written = path.resolve(options.base ?? "/", raw);
    const writtenWhy = dangerReason(written, host);
    if (writtenWhy) throw new ConfigError(`${key}: refusing "${raw}": ${writtenWhy}`, { key });
    const real = await resolveExisting(written);
    const realWhy = real === written ? undefined : dangerReason(real, host);
    if (realWhy) throw new ConfigError(`${key}: refusing "${raw}": it resolves to ${real} and ${realWhy}`, { key });
    options.pins?.pinIfExists(real, key);
    out.push(real);
  }
  return out;
}
