// Gathers the raw facts `pyisolate doctor` reports on: detection, /dev/shm, memfd, interpreters, torch, GPU.

import { readdir, readFile, realpath, stat, statfs } from "node:fs/promises";
import { arch, homedir, release } from "node:os";
import path from "node:path";
import { findOnPath, probePython, type PythonInfo } from "../env/python.js";
import { SegmentAllocator } from "../tensor/allocator.js";
import { nativeStatus } from "../tensor/native.js";
import { collectCudaFacts } from "./cuda-probe.js";
import type { CudaCheckFacts } from "./cuda.js";
import { detectSandbox, type DetectOptions } from "../sandbox/detect.js";
import { probeCgroupV2 } from "../limits/cgroup-v2.js";
import { findExecutable, runQuiet } from "../sandbox/host.js";
import type { SandboxCapabilities } from "../sandbox/types.js";

/** Everything the report is built from; recorded as a fixture for tests. */
export interface DoctorFacts {
  platform: NodeJS.Platform;
  arch: string;
  kernel: string;
  wsl: boolean;
  caps: SandboxCapabilities;
  devShm: { present: boolean; freeBytes: number | undefined };
  /** Whether python3 can create a memfd (the guest side of tensor IPC). */
  memfd: boolean;
  /** The host's tensor transport, as its allocator decides after one real allocation, and the native addon's state. */
  tensor: { mode: "memfd" | "file" | "copy"; reason: string; native: { available: boolean; reason: string | null } };
  pythons: PythonInfo[];
  /** torch as installed for `python3`: its version, or undefined when absent. */
  torch: { python: string | undefined; version: string | undefined };
  cudaIpcEnabled: boolean;
  gpu: { visible: boolean; source: string | undefined };
  /** Where a GPU is visible: the CUDA probe's runs on the host and inside the sandbox. */
  cuda: CudaCheckFacts;
  /** Where extension cgroups (v2) would go, or why there are none; absent in facts recorded before it was collected. */
  cgroup?: { parent: string } | { reason: string };
}

const MEMFD_PROBE = "import os; os.close(os.memfd_create('pyisolate-doctor'))";
const TORCH_PROBE = "import importlib.metadata as m; print(m.version('torch'))";
const MINORS = [9, 10, 11, 12, 13];

async function devShm(): Promise<DoctorFacts["devShm"]> {
  const isDir = await stat("/dev/shm").then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!isDir) return { present: false, freeBytes: undefined };
  const fs = await statfs("/dev/shm").catch(() => undefined);
  return { present: true, freeBytes: fs ? Number(fs.bavail) * Number(fs.bsize) : undefined };
}

/** python3.9 … python3.13 and python3 on PATH, and every pyenv / uv managed install; each verified by running it. */
export async function findPythons(env: NodeJS.ProcessEnv = process.env): Promise<PythonInfo[]> {
  const names = ["python3", ...MINORS.map((m) => `python3.${m}`)];
  const onPath = (await Promise.all(names.map((n) => findOnPath(n, env)))).flat();
  const home = env.HOME ?? homedir();
  const roots = [
    path.join(env.PYENV_ROOT ?? path.join(home, ".pyenv"), "versions"),
    path.join(env.XDG_DATA_HOME ?? path.join(home, ".local", "share"), "uv", "python"),
  ];
  const managed = (
    await Promise.all(
      roots.map(async (r) =>
        (await readdir(r).catch(() => [] as string[])).map((v) => path.join(r, v, "bin", "python3")),
      ),
    )
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

/** Allocate one small segment, as a tensor would, and see which transport the allocator ended up with. */
export function tensorTransport(allocator = new SegmentAllocator()): DoctorFacts["tensor"] {
  const native = nativeStatus.available
    ? { available: true, reason: null }
    : { available: false, reason: nativeStatus.reason };
  try {
    if (allocator.mode.kind !== "heap") allocator.allocate(4096, { name: "pyisolate-doctor" }).release();
  } catch (error) {
    return { mode: "copy", reason: `copying: shared memory failed (${(error as Error).message})`, native };
  }
  const mode = allocator.mode;
  return { mode: mode.kind === "heap" ? "copy" : mode.kind, reason: mode.reason, native };
}

async function gpu(env: NodeJS.ProcessEnv): Promise<DoctorFacts["gpu"]> {
  if (
    await stat("/dev/nvidia0").then(
      () => true,
      () => false,
    )
  )
    return { visible: true, source: "/dev/nvidia0" };
  if (
    await stat("/dev/dxg").then(
      () => true,
      () => false,
    )
  )
    return { visible: true, source: "/dev/dxg" };
  const smi = await findExecutable("nvidia-smi", env);
  if (smi && (await runQuiet([smi, "-L"], { env, timeoutMs: 5000 })).exitCode === 0)
    return { visible: true, source: "nvidia-smi" };
  return { visible: false, source: undefined };
}

export async function collectDoctorFacts(options: DetectOptions = {}): Promise<DoctorFacts> {
  const env = options.env ?? process.env;
  const python3 = await findExecutable(options.python ?? "python3", env);
  const run = (code: string) =>
    python3 ? runQuiet([python3, "-I", "-c", code], { env, timeoutMs: 15_000 }) : Promise.resolve(undefined);
  const [caps, shm, memfd, pythons, torch, gpuFacts, procVersion] = await Promise.all([
    detectSandbox(options),
    devShm(),
    run(MEMFD_PROBE).then((r) => r?.exitCode === 0),
    findPythons(env),
    run(TORCH_PROBE).then((r) => (r?.exitCode === 0 ? r.stdout.trim() : undefined)),
    gpu(env),
    readFile("/proc/version", "utf8").catch(() => ""),
  ]);
  const cgroup = await probeCgroupV2();
  const cuda = await collectCudaFacts({ caps, gpuVisible: gpuFacts.visible, python: python3, env });
  return {
    platform: process.platform,
    arch: arch(),
    kernel: release(),
    wsl: /microsoft/i.test(procVersion),
    caps,
    devShm: shm,
    memfd,
    tensor: tensorTransport(),
    pythons,
    torch: { python: python3, version: torch },
    cudaIpcEnabled: env.PYISOLATE_ENABLE_CUDA_IPC === "1",
    gpu: gpuFacts,
    cuda,
    cgroup,
  };
}
