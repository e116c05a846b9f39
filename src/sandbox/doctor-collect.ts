// Gathers the raw facts `pyisolate doctor` reports on: detection, /dev/shm, memfd, interpreters, torch, GPU.

import { readdir, readFile, realpath, stat, statfs } from "node:fs/promises";
import { arch, homedir, release } from "node:os";
import path from "node:path";
import { findOnPath, probePython, type PythonInfo } from "../env/python.js";
import { detectSandbox, type DetectOptions } from "./detect.js";
import { findExecutable, runQuiet } from "./host.js";
import type { SandboxCapabilities } from "./types.js";

/** Everything the report is built from; recorded as a fixture for tests. */
export interface DoctorFacts {
  platform: NodeJS.Platform;
  arch: string;
  kernel: string;
  wsl: boolean;
  caps: SandboxCapabilities;
  devShm: { present: boolean; freeBytes: number | undefined };
  memfd: boolean;
  pythons: PythonInfo[];
  /** torch as installed for `python3`: its version, or undefined when absent. */
  torch: { python: string | undefined; version: string | undefined };
  cudaIpcEnabled: boolean;
  gpu: { visible: boolean; source: string | undefined };
}

const MEMFD_PROBE = "import os; os.close(os.memfd_create('pyisolate-doctor'))";
const TORCH_PROBE = "import importlib.metadata as m; print(m.version('torch'))";
const MINORS = [9, 10, 11, 12, 13];

async function devShm(): Promise<DoctorFacts["devShm"]> {
  const isDir = await stat("/dev/shm").then((s) => s.isDirectory(), () => false);
  if (!isDir) return { present: false, freeBytes: undefined };
  const fs = await statfs("/dev/shm").catch(() => undefined);
  return { present: true, freeBytes: fs ? Number(fs.bavail) * Number(fs.bsize) : undefined };
}

/** python3.9 … python3.13 and python3 on PATH, and every pyenv / uv managed install; each verified by running it. */
export async function findPythons(env: NodeJS.ProcessEnv = process.env): Promise<PythonInfo[]> {
  const names = ["python3", ...MINORS.map((m) => `python3.${m}`)];
  const onPath = (await Promise.all(names.map((n) => findOnPath(n, env)))).flat();
  const home = env.HOME ?? homedir();
  const roots = [path.join(env.PYENV_ROOT ?? path.join(home, ".pyenv"), "versions"), path.join(env.XDG_DATA_HOME ?? path.join(home, ".local", "share"), "uv", "python")];
  const managed = (
    await Promise.all(roots.map(async (r) => (await readdir(r).catch(() => [] as string[])).map((v) => path.join(r, v, "bin", "python3"))))
  ).flat();
  const unique = new Map<string, string>();
  for (const file of [...onPath, ...managed]) {
    const real = await realpath(file).catch(() => undefined);
    if (real && !unique.has(real)) unique.set(real, file);
  }
  const probed = await Promise.all([...unique.values()].map((f) => probePython(f, env)));
  const byPath = new Map<string, PythonInfo>();
  for (const p of probed) if (p && !byPath.has(p.path)) byPath.set(p.path, p);
  return [...byPath.values()].sort((a, b) => a.version.localeCompare(b.version, undefined, { numeric: true }));
}

async function gpu(env: NodeJS.ProcessEnv): Promise<DoctorFacts["gpu"]> {
  if (await stat("/dev/nvidia0").then(() => true, () => false)) return { visible: true, source: "/dev/nvidia0" };
  if (await stat("/dev/dxg").then(() => true, () => false)) return { visible: true, source: "/dev/dxg" };
  const smi = await findExecutable("nvidia-smi", env);
  if (smi && (await runQuiet([smi, "-L"], { env, timeoutMs: 5000 })).exitCode === 0) return { visible: true, source: "nvidia-smi" };
  return { visible: false, source: undefined };
}

export async function collectDoctorFacts(options: DetectOptions = {}): Promise<DoctorFacts> {
  const env = options.env ?? process.env;
  const python3 = await findExecutable(options.python ?? "python3", env);
  const run = (code: string) => (python3 ? runQuiet([python3, "-I", "-c", code], { env, timeoutMs: 15_000 }) : Promise.resolve(undefined));
  const [caps, shm, memfd, pythons, torch, gpuFacts, procVersion] = await Promise.all([
    detectSandbox(options),
    devShm(),
    run(MEMFD_PROBE).then((r) => r?.exitCode === 0),
    findPythons(env),
    run(TORCH_PROBE).then((r) => (r?.exitCode === 0 ? r.stdout.trim() : undefined)),
    gpu(env),
    readFile("/proc/version", "utf8").catch(() => ""),
  ]);
  return {
    platform: process.platform,
    arch: arch(),
    kernel: release(),
    wsl: /microsoft/i.test(procVersion),
    caps,
    devShm: shm,
    memfd,
    pythons,
    torch: { python: python3, version: torch },
    cudaIpcEnabled: env.PYISOLATE_ENABLE_CUDA_IPC === "1",
    gpu: gpuFacts,
  };
}
