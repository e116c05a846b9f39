// Find Python interpreters: on PATH, in pyenv's and uv's version folders; each candidate is verified by running it.

import { constants } from "node:fs";
import { access, readdir, realpath } from "node:fs/promises";
import { homedir } from "node:os";
import path from "node:path";
import { ConfigError } from "../errors.js";
import { MIN_PYTHON } from "./python-policy.js";
import { runCommand } from "./run.js";

export interface PythonInfo {
  /** The interpreter's real path (symlinks resolved), as reported by the interpreter itself. */
  path: string;
  /** Full version, e.g. "3.11.7". */
  version: string;
}

export { MIN_PYTHON } from "./python-policy.js";
const PROBE_TIMEOUT_MS = 15_000;
const PROBE_SCRIPT =
  "import os, sys; v = sys.version_info; " +
  'sys.stdout.write("%d.%d.%d\\n%s\\n" % (v[0], v[1], v[2], os.path.realpath(sys.executable)))';
const VERSION_RE = /^\d+(\.\d+){0,2}$/;

/** Every executable called `name` on the PATH of `env`, in PATH order (not yet verified to run). */
export async function findOnPath(name: string, env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  const dirs = (env.PATH ?? "").split(path.delimiter).filter((d) => path.isAbsolute(d));
  const hits = await Promise.all(
    dirs.map(async (d) => ((await isExecutable(path.join(d, name))) ? path.join(d, name) : undefined)),
  );
  return [...new Set(hits.filter((h): h is string => h !== undefined))];
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Run `file` and ask it for its version and real path; undefined when it does not run (a pyenv shim that fails, say). */
export async function probePython(file: string, env: NodeJS.ProcessEnv = process.env): Promise<PythonInfo | undefined> {
  try {
    const r = await runCommand([file, "-E", "-c", PROBE_SCRIPT], { env, timeoutMs: PROBE_TIMEOUT_MS });
    const [version, real] = r.stdout.split("\n");
    if (r.exitCode !== 0 || !version || !real || !VERSION_RE.test(version)) return undefined;
    return { version, path: real };
  } catch {
    return undefined;
  }
}

/** Interpreter files worth probing for a version request, in order of preference, without duplicates. */
async function versionCandidates(parts: number[], env: NodeJS.ProcessEnv): Promise<string[]> {
  const names = [
    parts.length >= 2 ? `python${parts[0]}.${parts[1]}` : undefined,
    `python${parts[0]}`,
    "python3",
    "python",
  ];
  const onPath = await Promise.all(names.filter((n): n is string => !!n).map((n) => findOnPath(n, env)));
  const home = env.HOME ?? homedir();
  const versionDirs = [
    path.join(env.PYENV_ROOT ?? path.join(home, ".pyenv"), "versions"),
    path.join(env.XDG_DATA_HOME ?? path.join(home, ".local", "share"), "uv", "python"),
  ];
  const installed = await Promise.all(
    versionDirs.map(async (dir) => {
      const entries = await readdir(dir).catch(() => [] as string[]);
      const bins = entries.sort().map((e) => [path.join(dir, e, "bin", "python3"), path.join(dir, e, "bin", "python")]);
      const found = await Promise.all(
        bins.map(async ([p3, p]) => ((await isExecutable(p3!)) ? p3 : (await isExecutable(p!)) ? p : undefined)),
      );
      return found.filter((f): f is string => f !== undefined);
    }),
  );
  const all = [...onPath.flat(), ...installed.flat()];
  // Several names often lead to one file (python -> python3 -> python3.11): probe each real file once.
  const seen = new Set<string>();
  const unique: string[] = [];
  for (const file of all) {
    const real = await realpath(file).catch(() => file);
    if (seen.has(real)) continue;
    seen.add(real);
    unique.push(file);
  }
  return unique;
}

function parseVersion(v: string): number[] {
  return v.split(".").map(Number);
}

function compareVersions(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function describe(found: PythonInfo[]): string {
  if (found.length === 0) return "no working interpreter";
  const sorted = [...found].sort((a, b) => compareVersions(parseVersion(a.version), parseVersion(b.version)));
  return sorted.map((f) => `${f.version} (${f.path})`).join(", ");
}

function checkSupported(info: PythonInfo, request: string): PythonInfo {
  if (compareVersions(parseVersion(info.version), [...MIN_PYTHON]) < 0) {
    throw new ConfigError(
      `python "${request}" resolved to Python ${info.version} (${info.path}); ` +
        `virtual environments need Python ${MIN_PYTHON.join(".")} or newer`,
      { key: "python" },
    );
  }
  return info;
}

/** Probe every candidate in parallel; keep each distinct interpreter once, in candidate order. */
async function probeAll(files: string[], env: NodeJS.ProcessEnv): Promise<PythonInfo[]> {
  const probed = await Promise.all(files.map((f) => probePython(f, env)));
  const byPath = new Map<string, PythonInfo>();
  for (const p of probed) if (p && !byPath.has(p.path)) byPath.set(p.path, p);
  return [...byPath.values()];
}

/**
 * Resolve a python request to a verified interpreter. `request` is a version ("3.11", "3.11.7"), a path, a
 * command name on PATH, or undefined for `python3` on PATH. Throws a ConfigError listing what was found.
 */
export async function resolvePython(
  request: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<PythonInfo> {
  const req = request?.trim() || undefined;
  if (req !== undefined && VERSION_RE.test(req)) return resolveVersion(req, env);
  if (req !== undefined && (req.includes("/") || req.startsWith("~"))) {
    const file = path.resolve(req.startsWith("~/") ? path.join(env.HOME ?? homedir(), req.slice(2)) : req);
    const info = await probePython(file, env);
    if (!info)
      throw new ConfigError(`python "${req}" could not be run as a Python interpreter (${file})`, { key: "python" });
    return checkSupported(info, req);
  }
  const name = req ?? "python3";
  for (const file of await findOnPath(name, env)) {
    const info = await probePython(file, env);
    if (info) return checkSupported(info, name);
  }
  const asVersion = /^python(\d+(\.\d+){0,2})$/.exec(name)?.[1];
  if (asVersion) return resolveVersion(asVersion, env, name);
  const found = await probeAll(await versionCandidates([3], env), env);
  throw new ConfigError(`python "${name}" was not found on PATH (or does not run); found: ${describe(found)}`, {
    key: "python",
  });
}

async function resolveVersion(req: string, env: NodeJS.ProcessEnv, shown = req): Promise<PythonInfo> {
  const want = parseVersion(req);
  const found = await probeAll(await versionCandidates(want, env), env);
  let best: PythonInfo | undefined;
  for (const info of found) {
    const have = parseVersion(info.version);
    if (!want.every((n, i) => have[i] === n)) continue;
    if (!best || compareVersions(have, parseVersion(best.version)) > 0) best = info;
  }
  if (!best) {
    const all = found.length ? found : await probeAll(await versionCandidates([3], env), env);
    throw new ConfigError(`python ${shown} requested; found: ${describe(all)}`, { key: "python" });
  }
  return checkSupported(best, shown);
}
