// Which running processes use a venv: a guest's environment names it, or a process maps one of its files.

import { readdir, readFile } from "node:fs/promises";

/** The guest's environment variable naming its venv (src/process/launch.ts), as it appears in /proc/<pid>/environ. */
const VENV_VAR = "PYISOLATE_VENV=";

/** Pure: the venv prefixes and mapped files one process's environ and maps name. */
export function pathsOfProcess(environ: string, maps: string): string[] {
  const out: string[] = [];
  for (const variable of environ.split("\0")) {
    if (!variable.startsWith(VENV_VAR)) continue;
    try {
      const prefix = (JSON.parse(variable.slice(VENV_VAR.length)) as { prefix?: unknown }).prefix;
      if (typeof prefix === "string") out.push(prefix);
    } catch {
      // not ours
    }
  }
  for (const line of maps.split("\n")) {
    const file = line.split(/\s+/, 6)[5];
    if (file?.startsWith("/")) out.push(file);
  }
  return out;
}

/** Pure: the first pid whose paths are `dir` or lie below it. */
export function userOf(dir: string, byPid: ReadonlyMap<number, readonly string[]>): number | undefined {
  for (const [pid, paths] of byPid) {
    if (paths.some((p) => p === dir || p.startsWith(`${dir}/`))) return pid;
  }
  return undefined;
}

/** The paths of every process this user may read (others' are unreadable, and cannot use this user's venvs anyway). */
export async function processPaths(): Promise<Map<number, string[]>> {
  const byPid = new Map<number, string[]>();
  for (const name of await readdir("/proc").catch(() => [] as string[])) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    const environ = await readFile(`/proc/${pid}/environ`, "utf8").catch(() => "");
    const maps = await readFile(`/proc/${pid}/maps`, "utf8").catch(() => "");
    const paths = pathsOfProcess(environ, maps);
    if (paths.length) byPid.set(pid, paths);
  }
  return byPid;
}
