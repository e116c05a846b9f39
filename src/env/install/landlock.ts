// Host side of a Landlock-confined install: a private home and tmp, the user's installer config copied in, the launcher.

import { chmod, copyFile, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { CONFINE_EXEC_SCRIPT } from "../../runtime-paths.js";
import { buildInstallLandlockRules, encodeInstallLandlockRules, wrapWithConfineExec } from "./landlock-rules.js";
import type { MappedFile } from "./bwrap-policy.js";
import { LANDLOCK_ENV } from "../../sandbox/landlock-policy.js";
import type { PathPins } from "../../sandbox/pin-set.js";

/** The install's own HOME and TMPDIR on the host (Landlock hides nothing, so they must be real folders). */
export interface PrivateInstallDirs {
  root: string;
  home: string;
  tmp: string;
}

/** Make a fresh private HOME and TMPDIR for one install, mode 0700, under the OS temp folder. */
export async function makePrivateInstallDirs(): Promise<PrivateInstallDirs> {
  const root = await mkdtemp(path.join(tmpdir(), "pyisolate-install-"));
  const dirs = { root, home: path.join(root, "home"), tmp: path.join(root, "tmp") };
  await mkdir(dirs.home, { mode: 0o700 });
  await mkdir(dirs.tmp, { mode: 0o700 });
  return dirs;
}

export interface LandlockInstallRequest {
  dirs: PrivateInstallDirs;
  /** An interpreter for the launcher (the new venv's: nothing is installed in it yet, and `-I -S` skips its site). */
  python: string;
  network: boolean;
  /** The index proxy's port (network false, the install needs an index): TCP may connect to it alone. */
  proxyPort?: number;
  buildDir: string;
  cacheDir: string;
  readonlyPaths: readonly string[];
  /** Installer config files; those whose inside path lies in `dirs.home` are copied there, the others read in place. */
  configFiles: readonly MappedFile[];
  /** The install's pinned paths (the build folder, the cache, `readonlyPaths`); the private home and tmp are pinned here. */
  pins: PathPins;
}

/** What the install runs instead of an argv, and the variable that carries its rules. */
export interface LandlockInstall {
  wrap(argv: readonly string[]): string[];
  env: Record<string, string>;
  /** Host descriptors the launcher inherits from fd 5 on: its rules name those numbers. */
  fds: number[];
}

/**
 * Copy the user's config into the private home (build code may read it, as under bwrap, but never the host's
 * home), then return the launcher argv and the rules. The caller removes `dirs.root` after the install.
 */
export async function prepareLandlockInstall(req: LandlockInstallRequest): Promise<LandlockInstall> {
  const inPlace: string[] = [];
  for (const file of req.configFiles) {
    if (file.inside === file.host) {
      inPlace.push(file.host);
      continue;
    }
    await mkdir(path.dirname(file.inside), { recursive: true, mode: 0o700 });
    await copyFile(file.host, file.inside);
    await chmod(file.inside, 0o600);
  }
  for (const dir of [req.dirs.home, req.dirs.tmp]) req.pins.pinSpelling(dir, "install");
  // Config files kept in place are the host's own system files (/etc/pip.conf): ruled by name, like /usr.
  const child = req.pins.forChild([...req.readonlyPaths, req.buildDir, req.cacheDir, req.dirs.home, req.dirs.tmp]);
  const rules = buildInstallLandlockRules({
    network: req.network,
    ...(req.proxyPort !== undefined ? { proxyPort: req.proxyPort } : {}),
    buildDir: req.buildDir,
    cacheDir: req.cacheDir,
    home: req.dirs.home,
    tmp: req.dirs.tmp,
    readonlyPaths: [...req.readonlyPaths, ...inPlace],
    pinned: child.childFd,
  });
  return {
    wrap: (argv) => wrapWithConfineExec(req.python, CONFINE_EXEC_SCRIPT, argv),
    env: { [LANDLOCK_ENV]: encodeInstallLandlockRules(rules) },
    fds: child.hostFds,
  };
}

/** Remove the private home and tmp (and whatever build code left in them). */
export function removePrivateInstallDirs(dirs: PrivateInstallDirs): Promise<void> {
  return rm(dirs.root, { recursive: true, force: true });
}
