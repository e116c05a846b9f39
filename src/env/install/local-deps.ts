// Local-path dependencies of a confined install: each bound read-only, and a folder copied inside the sandbox before
// the installer runs, because setuptools writes its egg-info and build/ into the source tree.

import { realpathSync } from "node:fs";
import path from "node:path";
import { ConfigError } from "../../errors.js";
import { dangerReason, type HostDirs } from "../../sandbox/path-guard.js";
import type { PathPins } from "../../sandbox/pin-set.js";
import { localTargetPath, parseLocalRequirement, withTarget } from "../local-requirement.js";

/** Copies each source folder to its destination (symlinks as links: the copy is inside the sandbox), then execs the rest. */
const STAGE_SCRIPT = [
  "import os, shutil, sys",
  "args = sys.argv[1:]",
  "end = args.index('--')",
  "for source, dest in zip(args[0:end:2], args[1:end:2]):",
  "    shutil.copytree(source, dest, symlinks=True)",
  "os.execvp(args[end + 1], args[end + 1:])",
].join("\n");

/** Who named the dependencies: the code (trusted) or, for the others, the extension's file, and where those may point. */
export interface LocalDependencyRules {
  /** The code's dependencies; undefined: all are the host's. */
  trusted?: readonly string[];
  /** The extension's folder (real path). */
  extensionDir?: string;
  /** Real paths the host's code lets the file name. */
  roots?: readonly string[];
}

function isAtOrUnder(p: string, root: string): boolean {
  return p === root || p.startsWith(`${root}/`);
}

/** What the install does with its local dependencies. */
export interface LocalDependencies {
  /** Real paths to bind read-only (each pinned already). */
  binds: string[];
  /** The requirements as the installer gets them (a folder as its copy, an archive at its real path). */
  dependencies: string[];
  /** [source, copy] pairs for the stage step; empty when no folder needs one. */
  copies: Array<[string, string]>;
}

/**
 * Finds the local requirements in `dependencies` (those from the extension's file were checked and made real
 * when it was read), pins each and plans its copy under `insideTmp` (the install's private tmp as it sees it).
 * A path that does not exist, or one the guard refuses (a home, /, a secret), is a ConfigError naming it.
 */
export function planLocalDependencies(
  dependencies: readonly string[],
  pins: PathPins,
  insideTmp: string,
  host: HostDirs,
  rules: LocalDependencyRules = {},
): LocalDependencies {
  const plan: LocalDependencies = { binds: [], dependencies: [], copies: [] };
  for (const requirement of dependencies) {
    const local = parseLocalRequirement(requirement);
    const target = local && localTargetPath(local, process.cwd());
    if (local === undefined || target === undefined) {
      plan.dependencies.push(requirement);
      continue;
    }
    const fromFile = rules.trusted !== undefined && !rules.trusted.includes(requirement);
    let real: string;
    try {
      // The file's were made real when it was read: pinned as they are, so a link swapped in since is refused by the pin.
      real = fromFile ? target : realpathSync(target);
    } catch {
      throw new ConfigError(`dependencies: ${JSON.stringify(requirement)}: ${target} does not exist`, {
        key: "dependencies",
      });
    }
    if (fromFile) {
      const dir = rules.extensionDir;
      const inside =
        (dir !== undefined && real !== dir && isAtOrUnder(real, dir)) ||
        (rules.roots ?? []).some((root) => isAtOrUnder(real, root));
      if (!inside)
        throw new ConfigError(`dependencies: ${JSON.stringify(requirement)}: ${real} is outside the extension folder`, {
          key: "dependencies",
        });
    }
    const danger = dangerReason(real, host);
    if (danger)
      throw new ConfigError(
        `dependencies: ${JSON.stringify(requirement)}: ${real} cannot be bound into the install sandbox (${danger})`,
        { key: "dependencies" },
      );
    const pinned = pins.pin(real, "dependencies");
    plan.binds.push(real);
    if (!pinned.directory) {
      plan.dependencies.push(withTarget(local, real));
      continue;
    }
    // The copy keeps the folder's name: some build backends read it (a versioneer fallback, a setup.py by name).
    const copy = path.join(insideTmp, "pyisolate-local", String(plan.copies.length), path.basename(real));
    plan.copies.push([real, copy]);
    plan.dependencies.push(withTarget(local, copy));
  }
  return plan;
}

/** Pure: `argv` preceded by the stage step run by `python` (the base interpreter), or `argv` when nothing is copied. */
export function withStage(python: string, copies: ReadonlyArray<[string, string]>, argv: readonly string[]): string[] {
  if (copies.length === 0) return [...argv];
  return [python, "-I", "-c", STAGE_SCRIPT, ...copies.flat(), "--", ...argv];
}
