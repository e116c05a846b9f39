// A venv's interpreter links and pyvenv.cfg, written from the host's record after every install, never read for trust.

import { lstat, readlink, rm, symlink } from "node:fs/promises";
import path from "node:path";
import type { PythonInfo } from "./python.js";
import { ensureRealDir, readRegularFile, replaceFile } from "./safe-fs.js";

/** What the host recorded when it made the venv: the base interpreter (real path) and the site choice. */
export interface VenvLayout {
  python: PythonInfo;
  systemSitePackages: boolean;
  /** uv's venvs: scripts installed later find the venv relative to themselves (uv reads this line). */
  relocatable?: boolean;
}

const MAX_CFG_BYTES = 64 * 1024;

/** The names under bin/ that run the interpreter: python, python3, python3.11. */
export function interpreterNames(version: string): string[] {
  const [major, minor] = version.split(".");
  return ["python", `python${major}`, `python${major}.${minor}`];
}

/** Pure: the pyvenv.cfg the host writes: the lines Python's start-up and `site` read, from the recorded base. */
export function pyvenvCfgText(layout: VenvLayout): string {
  return [
    `home = ${path.dirname(layout.python.path)}`,
    `include-system-site-packages = ${layout.systemSitePackages ? "true" : "false"}`,
    `version = ${layout.python.version}`,
    `executable = ${layout.python.path}`,
    ...(layout.relocatable ? ["relocatable = true"] : []),
    "",
  ].join("\n");
}

/**
 * Put back what an install could have replaced: bin/ as a real folder, bin/python as a symlink to the recorded base
 * interpreter (python3 and python3.X link to it), pyvenv.cfg written anew. Whatever stood at those names (a script,
 * a symlink to a host file, a folder) is removed without being followed. Only the venv's own subprocesses use them
 * (the host starts the base interpreter itself); this keeps them working and pointing at the install the sandbox binds.
 */
export async function restoreLayout(venvDir: string, layout: VenvLayout): Promise<void> {
  const bin = path.join(venvDir, "bin");
  const binInfo = await lstat(bin).catch(() => undefined);
  if (binInfo && !binInfo.isDirectory()) await rm(bin, { force: true });
  await ensureRealDir(bin);
  const [python, ...aliases] = interpreterNames(layout.python.version);
  for (const name of [python!, ...aliases]) await rm(path.join(bin, name), { recursive: true, force: true });
  await symlink(layout.python.path, path.join(bin, python!));
  for (const name of aliases) await symlink(python!, path.join(bin, name));
  await replaceFile(path.join(venvDir, "pyvenv.cfg"), pyvenvCfgText(layout));
}

/**
 * Spawn-free: why the venv's links or pyvenv.cfg no longer are what the host wrote, or undefined when they are.
 * Reads with lstat/readlink/O_NOFOLLOW only: a planted symlink is a reason, never a path the host follows.
 */
export async function layoutProblem(venvDir: string, layout: VenvLayout): Promise<string | undefined> {
  if (!(await lstat(venvDir).catch(() => undefined))?.isDirectory()) return "the venv is not a real folder";
  if (!(await lstat(path.join(venvDir, "bin")).catch(() => undefined))?.isDirectory())
    return "the venv's bin/ is not a real folder";
  const [python, ...aliases] = interpreterNames(layout.python.version);
  const expected: [string, string][] = [
    [python!, layout.python.path],
    ...aliases.map((a): [string, string] => [a, python!]),
  ];
  for (const [name, target] of expected) {
    const link = await readlink(path.join(venvDir, "bin", name)).catch(() => undefined);
    if (link !== target) return `the venv's bin/${name} is not the host's link to ${target}`;
  }
  const cfg = await readRegularFile(path.join(venvDir, "pyvenv.cfg"), MAX_CFG_BYTES).catch(() => undefined);
  if (cfg?.toString("utf8") !== pyvenvCfgText(layout)) return "the venv's pyvenv.cfg is not the one the host wrote";
  return undefined;
}
