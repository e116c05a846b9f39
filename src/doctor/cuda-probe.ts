// Runs doctor's CUDA probe where a GPU is visible: with python3 on the host, then inside the sandbox with gpu: true.

import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { CONFINE_EXEC_SCRIPT } from "../runtime-paths.js";
import { buildBwrapArgs } from "../sandbox/bwrap-policy.js";
import { CUDA_PROBE, parseCudaProbe, type CudaCheckFacts } from "./cuda.js";
import { listGpuDevices, readSystemLinks, runQuiet } from "../sandbox/host.js";
import { buildLandlockRules, encodeConfinementRules, LANDLOCK_ENV } from "../sandbox/landlock-policy.js";
import { DEFAULT_SANDBOX_POLICY, type SandboxCapabilities, type SandboxPolicy } from "../sandbox/types.js";

/** Importing torch and initialising CUDA can take a while on a cold machine. */
const PROBE_TIMEOUT_MS = 180_000;

export interface CudaProbeInput {
  caps: SandboxCapabilities;
  gpuVisible: boolean;
  /** python3 on PATH (the check runs only with an interpreter that imports torch). */
  python: string | undefined;
  env: NodeJS.ProcessEnv;
}

/** Run the probe on the host and, when torch has CUDA there, inside the best sandbox this host offers. */
export async function collectCudaFacts(input: CudaProbeInput): Promise<CudaCheckFacts> {
  if (!input.gpuVisible) return { skipped: "no-gpu" };
  if (!input.python) return { skipped: "no-python" };
  const outside = await runQuiet([input.python, "-c", CUDA_PROBE], { env: input.env, timeoutMs: PROBE_TIMEOUT_MS });
  const facts: CudaCheckFacts = { python: input.python, outside, backend: input.caps.backend };
  const found = parseCudaProbe(outside.stdout);
  if (!found?.torch || !found.cuda_build || !found.available || input.caps.backend === "none") return facts;
  const scratch = await mkdtemp(path.join(tmpdir(), "pyisolate-doctor-"));
  try {
    const argv = await insideArgv(input.caps, found, scratch);
    // As an extension gets it: a clean environment (no LD_LIBRARY_PATH, no CUDA_VISIBLE_DEVICES from the host).
    const env = {
      PATH: input.env.PATH ?? "/usr/bin:/bin",
      HOME: path.join(scratch, "home"),
      TMPDIR: path.join(scratch, "tmp"),
      ...argv.env,
    };
    facts.inside = await runQuiet(argv.argv, { env, timeoutMs: PROBE_TIMEOUT_MS });
  } catch (error) {
    facts.insideError = (error as Error).message;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  return facts;
}

async function insideArgv(
  caps: SandboxCapabilities,
  found: NonNullable<ReturnType<typeof parseCudaProbe>>,
  scratch: string,
): Promise<{ argv: string[]; env: Record<string, string> }> {
  const home = path.join(scratch, "home");
  const tmp = path.join(scratch, "tmp");
  await mkdir(home);
  await mkdir(tmp);
  const exe = found.executable!;
  const pythonInstall = [...new Set([found.base_prefix!, found.prefix!])];
  // torch's own folder, read-only (it may live outside the prefix: a user site, a PYTHONPATH entry).
  const policy: SandboxPolicy = { ...DEFAULT_SANDBOX_POLICY, gpu: true, readonlyPaths: [found.site!] };
  const gpuDevices = await listGpuDevices();
  const probe = [exe, "-I", "-c", CUDA_PROBE, found.site!];
  if (caps.backend === "landlock") {
    const rules = buildLandlockRules(policy, {
      pythonInstall,
      venv: found.prefix!,
      extensionDir: scratch,
      runtimeDir: scratch,
      home,
      tmpdir: tmp,
      gpuDevices,
    });
    const spec = encodeConfinementRules(rules, { cwd: scratch });
    return { argv: [exe, "-I", "-S", CONFINE_EXEC_SCRIPT, "--", ...probe], env: { [LANDLOCK_ENV]: spec } };
  }
  const args = buildBwrapArgs(
    policy,
    {
      pythonInstall,
      venv: found.prefix!,
      extensionDir: scratch,
      runtimeDir: scratch,
      home,
      systemLinks: await readSystemLinks(),
      gpuDevices,
    },
    caps.namespaces,
  );
  return { argv: [caps.bwrap!.path, ...args, "--", ...probe], env: {} };
}
