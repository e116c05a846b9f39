// Link an extension's venv to a shared runtime layer: a .pth after its own site-packages, and metadata stubs.

import { lstat, mkdir, readdir, realpath } from "node:fs/promises";
import path from "node:path";
import { ConfigError, EnvironmentBuildError } from "../errors.js";
import type { PythonInfo } from "./python.js";
import { createExclusive, readRegularFile } from "./safe-fs.js";

/** A built layer, as an extension's build needs it and as its Environment shows it. */
export interface SharedRuntimeLink {
  /** The key of `sharedRuntimes` in the manager's options. */
  name: string;
  /** The layer's venv (`venvRoot/.shared/<name>`). */
  venvPath: string;
  /** The layer's site-packages (real path): what the extension's `.pth` adds after its own, and what the sandbox shows. */
  sitePackages: string;
  /** Its full Python version: an extension must run the same major.minor to load its compiled modules. */
  pythonVersion: string;
  /** The layer's own fingerprint: part of every dependent venv's fingerprint, so a rebuilt layer rebuilds them. */
  fingerprint: string;
  /** The layer sees the base interpreter's site-packages; so does every venv linked to it (unless that venv says otherwise, a ConfigError). */
  systemSitePackages?: boolean;
}

/** The file each dependent venv gets in its site-packages. */
export const SHARED_PTH = "_pyisolate_shared_runtime.pth";
/** Written as INSTALLER into every stub, so that a person (or a tool) can tell a stub from a real install. */
export const STUB_INSTALLER = "pyisolate-shared-runtime";
/** The dist-info files a stub keeps: what resolvers and `importlib.metadata` read. RECORD is written anew. */
const STUB_FILES = ["METADATA", "entry_points.txt", "direct_url.json", "top_level.txt", "WHEEL"];
/** The most one stub file may hold: real METADATA files run to tens of KiB (long descriptions); this is far above. */
export const MAX_STUB_FILE_BYTES = 4 << 20;

/** `<venv>/lib/pythonX.Y/site-packages` (Linux venvs, uv's and the venv module's alike). */
export function sitePackagesOf(venvPath: string, pythonVersion: string): string {
  const [major, minor] = pythonVersion.split(".");
  return path.join(venvPath, "lib", `python${major}.${minor}`, "site-packages");
}

function minor(version: string): string {
  return version.split(".").slice(0, 2).join(".");
}

/** The link for a layer `ensureEnvironment` has just built or reused under the name `name`. */
export async function sharedRuntimeLink(
  name: string,
  layer: { venvPath: string; pythonVersion: string; fingerprint: string; systemSitePackages?: boolean },
): Promise<SharedRuntimeLink> {
  const sitePackages = await realpath(sitePackagesOf(layer.venvPath, layer.pythonVersion));
  // The layer's install could have made site-packages a symlink to a host folder: every user's sandbox would bind it.
  const venvReal = await realpath(layer.venvPath);
  if (!sitePackages.startsWith(`${venvReal}/`))
    throw new EnvironmentBuildError(
      `shared runtime "${name}": its site-packages leads out of the layer's venv (to ${sitePackages})`,
    );
  const link: SharedRuntimeLink = {
    name,
    venvPath: layer.venvPath,
    sitePackages,
    pythonVersion: layer.pythonVersion,
    fingerprint: layer.fingerprint,
  };
  if (layer.systemSitePackages) link.systemSitePackages = true;
  return link;
}

/** A Python string literal for `text` (JSON's escapes are a subset of Python's). */
function pyString(text: string): string {
  return JSON.stringify(text);
}

/**
 * Link the venv being built (`venvDir`, interpreter `python`) to `link`, before its own install:
 * 1. a `.pth` that calls `site.addsitedir(<layer site-packages>)`: the layer comes after the venv's own
 *    site-packages on sys.path (the extension's own pins win) and the layer's own .pth files run too;
 * 2. a metadata stub (`<dist>.dist-info` holding METADATA, entry points, a RECORD of only itself) for every
 *    distribution in the layer. uv does not look at sys.path beyond the venv (astral-sh/uv#2500), and the install
 *    sandbox does not show the layer; the stubs make both installers see the layer's packages as installed, at
 *    the layer's versions, so they are not installed again, while a pin to another version replaces the stub
 *    (uninstalling it removes only the stub) with a real install in the venv.
 * Returns the names of the stubbed distributions.
 */
export async function linkSharedRuntime(
  venvDir: string,
  python: PythonInfo,
  link: SharedRuntimeLink,
): Promise<string[]> {
  if (minor(python.version) !== minor(link.pythonVersion)) {
    throw new ConfigError(
      `shared runtime "${link.name}" was built for Python ${link.pythonVersion}, but this extension's venv uses ` +
        `Python ${python.version}: give both the same "python" (an extension with no "python" of its own gets the runtime's)`,
      { key: "sharedRuntime" },
    );
  }
  const layer = link.sitePackages;
  const own = sitePackagesOf(venvDir, python.version);
  await mkdir(own, { recursive: true });
  await createExclusive(
    path.join(own, SHARED_PTH),
    `# pyisolate shared runtime "${link.name}" (${link.fingerprint.slice(0, 12)}): searched after this venv's own packages\n` +
      `import site; site.addsitedir(${pyString(layer)})\n`,
  );
  const infos: string[] = [];
  for (const entry of await readdir(layer)) {
    // A .dist-info that is a symlink (to a host folder) is not one of the layer's installs: no stub for it.
    if (entry.endsWith(".dist-info") && (await lstat(path.join(layer, entry))).isDirectory()) infos.push(entry);
  }
  for (const info of infos) await writeStub(path.join(layer, info), path.join(own, info));
  return infos.map((info) => info.replace(/-[^-]*\.dist-info$/, ""));
}

/**
 * Copy a layer's dist-info as a stub. The layer's files were written by its install code: each is read as a
 * regular file only (O_NOFOLLOW, the size taken from the open file, capped), never through a symlink, and written
 * as a new file (O_EXCL) in the venv being built.
 */
async function writeStub(from: string, to: string): Promise<void> {
  await mkdir(to);
  const present = new Set(await readdir(from));
  const kept = STUB_FILES.filter((file) => present.has(file));
  if (!kept.includes("METADATA")) throw new EnvironmentBuildError(`${from} has no METADATA`);
  for (const file of kept) {
    const bytes = await readRegularFile(path.join(from, file), MAX_STUB_FILE_BYTES).catch((err: Error) => {
      throw new EnvironmentBuildError(`shared runtime stub ${path.join(from, file)} was not copied: ${err.message}`, {
        cause: err,
      });
    });
    await createExclusive(path.join(to, file), bytes);
  }
  await createExclusive(path.join(to, "INSTALLER"), `${STUB_INSTALLER}\n`);
  const base = path.basename(to);
  // Only the stub's own files: uninstalling it (a pin to another version) must never reach into the layer.
  const record = [...kept, "INSTALLER", "RECORD"].map((file) => `${base}/${file},,`);
  await createExclusive(path.join(to, "RECORD"), `${record.join("\n")}\n`);
}
