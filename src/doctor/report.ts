// `pyisolate doctor`: this machine's compatibility matrix as data, each gap with its remedy (the seed's tables, live).

import type { PythonInfo } from "../env/python.js";
import { collectDoctorFacts, type DoctorFacts } from "./collect.js";
import { judgeCudaInSandbox, type CudaInSandbox } from "./cuda.js";
import type { DetectOptions } from "../sandbox/detect.js";
import { limitSupport, type LimitSupport } from "../limits/mechanisms.js";
import type { NamespaceSupport, RestrictionModel, SandboxBackend, SandboxGap } from "../sandbox/types.js";
import { MIN_PYTHON, TESTED_PYTHON_MINORS, TESTED_PYTHON_RANGE } from "../env/python-policy.js";

/** The seed's legend: works as designed, works with less, does not work. */
export type Status = "full" | "degraded" | "none";
export type Support = "supported" | "limited" | "unsupported" | "unknown";

export interface DoctorGap extends SandboxGap {
  /** Which section of the report the gap belongs to. */
  section: "sandbox" | "landlock" | "tensorIpc" | "python" | "torch" | "cudaIpc" | "cudaInSandbox";
}

export interface DoctorReport {
  platform: { os: NodeJS.Platform; arch: string; kernel: string; wsl: boolean };
  sandbox: {
    status: Status;
    backend: SandboxBackend;
    model: RestrictionModel;
    bwrap: { path: string; version: string | null } | null;
  };
  namespaces: NamespaceSupport;
  landlock: { status: Status; abi: number; networkRules: boolean };
  /**
   * The transport this host's tensors get (`memfd`, `file`: files in a private folder, both zero-copy; `copy`) and
   * why; the native addon; /dev/shm, which pyisolate's transfers do not use; whether python3 can make a memfd.
   */
  tensorIpc: {
    status: Status;
    method: "memfd" | "file" | "copy";
    reason: string;
    native: { available: boolean; reason: string | null };
    devShm: { present: boolean; freeBytes: number | null };
    memfd: boolean;
  };
  pythons: { version: string; path: string; support: Support; note: string }[];
  torch: { python: string | null; version: string | null; support: Support | "absent"; note: string };
  cudaIpc: { status: Status; enabled: boolean; gpuVisible: boolean; gpuSource: string | null };
  /** Where a GPU is visible: whether CUDA initialises inside the sandbox (a silent CPU fall-back is the common failure). */
  cudaInSandbox: CudaInSandbox;
  /** Which mechanisms enforce each `limits` key here (cgroup v2, rlimits, bwrap's tmpfs size, the watchdog). */
  limits: LimitSupport;
  /** kind: container, vm or host, from evidence; blockers: the container layers that stop bwrap, in order. */
  container: {
    detected: boolean;
    kind: "container" | "vm" | "host" | null;
    runtime: string | null;
    evidence: string[];
    blockers: string[];
  };
  gaps: DoctorGap[];
}

/** The seed's minimum /dev/shm size. */
export const MIN_SHM_BYTES = 100 * 1024 * 1024;

export { TESTED_PYTHON_MINORS } from "../env/python-policy.js";

/** Python support: what this runtime is tested on (3.9 to 3.13, wider than pyisolate's own matrix). */
export function pythonSupport(version: string): { support: Support; note: string } {
  const [major, minor] = version.split(".").map(Number) as [number, number];
  if (major !== MIN_PYTHON[0] || minor < MIN_PYTHON[1])
    return { support: "unsupported", note: `missing required features (${MIN_PYTHON.join(".")} or newer needed)` };
  if (TESTED_PYTHON_MINORS.includes(minor)) return { support: "supported", note: "tested" };
  return { support: "unknown", note: `newer than the tested ${TESTED_PYTHON_RANGE}` };
}

/** PyTorch support as pyisolate's compatibility table states it. */
export function torchSupport(version: string): { support: Support; note: string } {
  const [major = 0, minor = 0] = version.split(/[.+]/).map(Number);
  if (major >= 2) return { support: "supported", note: "recommended" };
  if (major === 1 && minor === 13) return { support: "limited", note: "IPC API differences" };
  if (major === 1 && minor === 12) return { support: "limited", note: "some tensor operations differ" };
  return { support: "unsupported", note: "1.12 or newer needed" };
}

function sandboxStatus(backend: SandboxBackend): Status {
  return backend === "bwrap" ? "full" : backend === "none" ? "none" : "degraded";
}

const mib = (n: number): string => `${Math.floor(n / (1024 * 1024))} MiB`;

function tensorSection(f: DoctorFacts, gaps: DoctorGap[]): DoctorReport["tensorIpc"] {
  const { mode, reason, native } = f.tensor;
  if (!native.available) {
    const disabled = native.reason?.includes("PYISOLATE_DISABLE_NATIVE");
    gaps.push({
      section: "tensorIpc",
      id: "tensor-native-missing",
      problem: `the native tensor addon is not in use (${native.reason}): tensors are copied between processes, not shared`,
      remedy: disabled
        ? ["unset PYISOLATE_DISABLE_NATIVE"]
        : [
            "npm rebuild pyisolate",
            "# node-gyp needs a C/C++ compiler, make and python3:",
            "sudo apt-get install -y build-essential python3   # Debian/Ubuntu",
            "sudo dnf install -y gcc-c++ make python3   # Fedora/RHEL",
          ],
    });
  } else if (mode === "file") {
    // The allocator says "files in a private folder, zero-copy: <why memfd is off>".
    const why = reason.slice(reason.indexOf(": ") + 2);
    gaps.push({
      section: "tensorIpc",
      id: "memfd-missing",
      problem: `memfd is not used (${why}): tensors travel as files in a private folder instead (still zero-copy)`,
      remedy: reason.includes("PYISOLATE_DISABLE_MEMFD")
        ? ["unset PYISOLATE_DISABLE_MEMFD"]
        : [
            "uname -r   # memfd_create needs Linux 3.17+",
            "# in a container: a seccomp profile that allows memfd_create (Docker's default does)",
          ],
    });
  }
  if (!f.devShm.present || (f.devShm.freeBytes !== undefined && f.devShm.freeBytes < MIN_SHM_BYTES)) {
    const what = f.devShm.present
      ? `/dev/shm has only ${mib(f.devShm.freeBytes!)} free (Docker's default is 64 MB)`
      : "/dev/shm is missing";
    gaps.push({
      section: "tensorIpc",
      id: "shm-small",
      problem: `${what}: tensor transfers still work (memfd and private files do not use /dev/shm), but multiprocessing and torch DataLoader workers inside extensions may fail`,
      remedy: ["df -h /dev/shm", "sudo mount -o remount,size=1G /dev/shm", "# in Docker: docker run --shm-size=1g ..."],
    });
  }
  const status: Status = mode === "memfd" ? "full" : mode === "file" ? "degraded" : "none";
  return {
    status,
    method: mode,
    reason,
    native,
    devShm: { present: f.devShm.present, freeBytes: f.devShm.freeBytes ?? null },
    memfd: f.memfd,
  };
}

function pythonSection(pythons: PythonInfo[], gaps: DoctorGap[]): DoctorReport["pythons"] {
  // The table starts one minor below the minimum ("not supported"); older interpreters are not worth a row.
  const belowMinimum = `${MIN_PYTHON[0]}.${MIN_PYTHON[1] - 1}.`;
  const rows = pythons
    .filter((p) => pythonSupport(p.version).support !== "unsupported" || p.version.startsWith(belowMinimum))
    .map((p) => ({ version: p.version, path: p.path, ...pythonSupport(p.version) }));
  if (!rows.some((r) => r.support === "supported")) {
    gaps.push({
      section: "python",
      id: "python-none-supported",
      problem: `no Python ${TESTED_PYTHON_RANGE} was found`,
      remedy: ["uv python install 3.12", "# or: sudo apt-get install -y python3.12 python3.12-venv"],
    });
  }
  return rows;
}

function torchSection(f: DoctorFacts, gaps: DoctorGap[]): DoctorReport["torch"] {
  if (!f.torch.version)
    return {
      python: f.torch.python ?? null,
      version: null,
      support: "absent",
      note: "not installed for python3 (extensions install their own)",
    };
  const s = torchSupport(f.torch.version);
  if (s.support === "unsupported")
    gaps.push({
      section: "torch",
      id: "torch-too-old",
      problem: `torch ${f.torch.version} is older than 1.12`,
      remedy: ["python3 -m pip install --upgrade 'torch>=2'"],
    });
  return { python: f.torch.python ?? null, version: f.torch.version, ...s };
}

function cudaSection(f: DoctorFacts, gaps: DoctorGap[]): DoctorReport["cudaIpc"] {
  if (f.gpu.visible && !f.cudaIpcEnabled) {
    gaps.push({
      section: "cudaIpc",
      id: "cuda-ipc-disabled",
      problem: "a GPU is visible but CUDA IPC is off: CUDA tensors are copied through the host",
      remedy: ["export PYISOLATE_ENABLE_CUDA_IPC=1"],
    });
  }
  if (!f.gpu.visible && f.cudaIpcEnabled) {
    gaps.push({
      section: "cudaIpc",
      id: "cuda-ipc-no-gpu",
      problem: "PYISOLATE_ENABLE_CUDA_IPC=1 but no NVIDIA GPU is visible",
      remedy: ["nvidia-smi -L", "ls -l /dev/nvidia*", "# NVIDIA driver 470+ needed; in Docker: --gpus all"],
    });
  }
  if (f.gpu.visible && f.cudaIpcEnabled && f.caps.backend === "bwrap") {
    // Legacy CUDA IPC handles do not cross PID namespaces, and bwrap gives each extension its own (docs/tensors.md).
    gaps.push({
      section: "cudaIpc",
      id: "cuda-ipc-bwrap",
      problem:
        "the default sandbox here is bwrap, whose PID namespaces CUDA IPC handles do not cross: extensions that share CUDA tensors should run under Landlock",
      remedy: ['# in load(): sandbox: { backend: "landlock", gpu: true } for the extensions that share CUDA tensors'],
    });
  }
  const status: Status = f.gpu.visible && f.cudaIpcEnabled ? "full" : f.gpu.visible ? "degraded" : "none";
  return { status, enabled: f.cudaIpcEnabled, gpuVisible: f.gpu.visible, gpuSource: f.gpu.source ?? null };
}

function cudaInSandboxSection(f: DoctorFacts, gaps: DoctorGap[]): CudaInSandbox {
  const { row, gap } = judgeCudaInSandbox(f.cuda);
  if (gap) gaps.push({ ...gap, section: "cudaInSandbox" });
  return row;
}

function containerSection(caps: DoctorFacts["caps"]): DoctorReport["container"] {
  const c = caps.container;
  return {
    detected: caps.inContainer,
    kind: c?.kind ?? null,
    runtime: c?.runtime ?? null,
    evidence: c?.evidence ?? [],
    blockers: c?.blockers.map((b) => b.layer) ?? [],
  };
}

/** Pure: the report from recorded facts. */
export function buildDoctorReport(f: DoctorFacts): DoctorReport {
  const gaps: DoctorGap[] = f.caps.gaps.map((g) => ({
    ...g,
    section: g.id === "landlock-missing" ? "landlock" : "sandbox",
  }));
  const abi = f.caps.landlockAbi;
  return {
    platform: { os: f.platform, arch: f.arch, kernel: f.kernel, wsl: f.wsl },
    sandbox: {
      status: sandboxStatus(f.caps.backend),
      backend: f.caps.backend,
      model: f.caps.model,
      bwrap: f.caps.bwrap ? { path: f.caps.bwrap.path, version: f.caps.bwrap.version ?? null } : null,
    },
    namespaces: { ...f.caps.namespaces },
    landlock: { status: abi >= 4 ? "full" : abi > 0 ? "degraded" : "none", abi, networkRules: abi >= 4 },
    tensorIpc: tensorSection(f, gaps),
    pythons: pythonSection(f.pythons, gaps),
    torch: torchSection(f, gaps),
    cudaIpc: cudaSection(f, gaps),
    cudaInSandbox: cudaInSandboxSection(f, gaps),
    limits: limitSupport(f.cgroup ?? { reason: "not probed (recorded facts)" }, f.caps.backend === "bwrap"),
    container: containerSection(f.caps),
    gaps,
  };
}

/** Detect and report on this machine; the `detect` API behind `pyisolate doctor`. */
export async function runDoctor(options: DetectOptions = {}): Promise<DoctorReport> {
  return buildDoctorReport(await collectDoctorFacts(options));
}
