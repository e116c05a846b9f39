// Pure: does CUDA initialise INSIDE the sandbox? The probe script, its recorded runs, and the verdict with its remedy.

import type { SandboxBackend, SandboxGap } from "../sandbox/types.js";

/**
 * Run with `python -c`, outside and then inside the sandbox with `gpu: true`; argv[1], when given, is the folder
 * that holds torch (prepended to sys.path). Prints one `PYISOLATE-CUDA {json}` line: torch's version and CUDA
 * build, `torch.cuda.is_available()`, the device count, and a tiny allocation and kernel on the first device.
 * Outside it also says where torch lives, so that the sandbox can show that folder.
 */
export const CUDA_PROBE = `import json, os, sys
if len(sys.argv) > 1:
    sys.path.insert(0, sys.argv[1])
out = {"torch": None, "cuda_build": None, "available": False, "devices": 0, "alloc": None, "error": None}
try:
    import torch
    out["torch"] = torch.__version__
    out["cuda_build"] = torch.version.cuda
    out["site"] = os.path.dirname(os.path.dirname(os.path.realpath(torch.__file__)))
    out["prefix"] = os.path.realpath(sys.prefix)
    out["base_prefix"] = os.path.realpath(sys.base_prefix)
    out["executable"] = os.path.realpath(sys.executable)
    out["available"] = bool(torch.cuda.is_available())
    if out["available"]:
        out["devices"] = torch.cuda.device_count()
        x = torch.ones(1024, device="cuda")
        out["alloc"] = float((x * 2).sum().item())
except Exception as e:
    out["error"] = "%s: %s" % (type(e).__name__, e)
print("PYISOLATE-CUDA " + json.dumps(out))
`;

/** One run of the probe, as recorded. */
export interface CudaProbeRun {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

/** What `collectCudaFacts` found; every field but `skipped` is a raw input, so the verdict is testable with recordings. */
export interface CudaCheckFacts {
  /** Set when nothing was run: "no-gpu" (no NVIDIA device node), "no-python" (no python3 to run the probe). */
  skipped?: "no-gpu" | "no-python";
  python?: string;
  outside?: CudaProbeRun;
  /** The backend the inside run used ("none": this host has no sandbox to check). */
  backend?: SandboxBackend;
  inside?: CudaProbeRun;
  /** Why the inside run could not be started (a refused path, a failed spawn). */
  insideError?: string;
}

export interface ProbeResult {
  torch: string | null;
  cuda_build: string | null;
  available: boolean;
  devices: number;
  alloc: number | null;
  error: string | null;
  site?: string;
  prefix?: string;
  base_prefix?: string;
  executable?: string;
}

/** The probe's line in `stdout`, or undefined when it printed none (it crashed, or never ran). */
export function parseCudaProbe(stdout: string): ProbeResult | undefined {
  const line = stdout.split("\n").find((l) => l.startsWith("PYISOLATE-CUDA "));
  if (!line) return undefined;
  try {
    return JSON.parse(line.slice("PYISOLATE-CUDA ".length)) as ProbeResult;
  } catch {
    return undefined;
  }
}

/** `full`: CUDA works inside; `none`: it silently does not (a gap); `skipped`: nothing to check, and `detail` says why. */
export interface CudaInSandbox {
  status: "full" | "none" | "skipped";
  backend: SandboxBackend | null;
  torch: string | null;
  detail: string;
}

/** The line of stderr that says what went wrong: the last warning or error (Python echoes the source line after it), else the last line. */
function lastLine(text: string): string {
  const lines = text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  const line = [...lines].reverse().find((l) => /warning|error/i.test(l)) ?? lines[lines.length - 1] ?? "";
  return line.length > 300 ? `${line.slice(0, 300)}...` : line;
}
/** The tiny allocation: 1024 ones, doubled, summed. */
const EXPECTED_SUM = 2048;

const REMEDY = [
  "ls -l /dev/nvidia*   # every node must exist on the host: nvidia0..N, nvidiactl, nvidia-uvm",
  "sudo nvidia-modprobe -u -c=0   # creates /dev/nvidia-uvm when the module was never loaded",
  "# the extension's sandbox needs gpu: true (sandbox: { gpu: true } on load, or in pyisolate.yaml)",
  "# extensions get a clean environment: a driver found only through LD_LIBRARY_PATH or CUDA_VISIBLE_DEVICES",
  "#   set on the host is not seen inside; pass them in the load's env, or install the driver libraries under /usr",
];

/** Pure: the verdict, and a gap when CUDA works on the host but not inside the sandbox (or not at all). */
export function judgeCudaInSandbox(f: CudaCheckFacts): { row: CudaInSandbox; gap?: SandboxGap } {
  const skip = (detail: string, torch: string | null = null): { row: CudaInSandbox } => ({
    row: { status: "skipped", backend: f.backend ?? null, torch, detail },
  });
  if (f.skipped === "no-gpu") return skip("no GPU visible (no /dev/nvidia0): nothing to check");
  if (f.skipped === "no-python" || !f.outside) return skip("no python3 to check with");
  const outside = parseCudaProbe(f.outside.stdout);
  if (!outside?.torch)
    return skip(
      `no torch to check with (${f.python ?? "python3"} cannot import torch${outside?.error ? `: ${outside.error}` : ""})`,
    );
  const torch = outside.torch;
  if (!outside.cuda_build) return skip(`torch ${torch} for python3 is a CPU-only build: no CUDA to check`, torch);
  if (!outside.available || outside.alloc !== EXPECTED_SUM) {
    const why = outside.error ?? (lastLine(f.outside.stderr) || "torch.cuda.is_available() is False");
    return {
      row: {
        status: "none",
        backend: f.backend ?? null,
        torch,
        detail: `CUDA does not work even outside the sandbox: ${why}`,
      },
      gap: {
        id: "cuda-host",
        problem: `a GPU is visible but CUDA does not initialise on this host (torch ${torch}): ${why}`,
        remedy: [
          "nvidia-smi",
          `python3 -c "import torch; print(torch.cuda.is_available())"`,
          "# the driver must be as new as torch's CUDA build " + `(${outside.cuda_build})`,
        ],
      },
    };
  }
  if (!f.backend || f.backend === "none")
    return skip("CUDA works on the host; this host has no sandbox to check inside", torch);
  if (f.insideError) return skip(`the check could not be run inside the sandbox: ${f.insideError}`, torch);
  const inside = f.inside ? parseCudaProbe(f.inside.stdout) : undefined;
  const where = `inside the sandbox (${f.backend}, gpu: true)`;
  if (inside?.available && inside.alloc === EXPECTED_SUM) {
    return {
      row: {
        status: "full",
        backend: f.backend,
        torch,
        detail: `CUDA initialises ${where}: ${inside.devices} device(s), a tiny allocation works (torch ${torch})`,
      },
    };
  }
  let what: string;
  if (!inside)
    what = `the probe failed (exit ${f.inside?.exitCode ?? "?"}): ${lastLine(f.inside?.stderr ?? "") || "no output"}`;
  else if (!inside.torch) what = `torch cannot be imported: ${inside.error ?? "unknown error"}`;
  else if (!inside.available)
    what = `torch.cuda.is_available() is False${lastLine(f.inside?.stderr ?? "") ? `: ${lastLine(f.inside!.stderr)}` : ""}`;
  else what = `CUDA initialises but a tiny allocation fails: ${inside.error ?? `sum ${inside.alloc}`}`;
  const problem = `CUDA works on this host but not ${where}: ${what}. Extensions would silently run on the CPU`;
  return {
    row: { status: "none", backend: f.backend, torch, detail: `CUDA fails ${where}: ${what}` },
    gap: { id: "cuda-sandbox", problem, remedy: REMEDY },
  };
}
