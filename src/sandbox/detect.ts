// Detects, once per process, what confinement this host allows: kernel files, one real bwrap launch, Landlock's ABI.

import {
  parseBwrapVersion,
  parseHostFiles,
  parseLandlockProbe,
  decideModel,
  classifyBwrapStderr,
} from "./detect-parse.js";
import { baseMountArgs, namespaceArgs, processArgs, systemMountArgs } from "./bwrap-policy.js";
import { diagnoseContainer } from "./detect-container.js";
import { containerGap } from "./detect-container-remedy.js";
import { readEvidence } from "./detect-evidence.js";
import { findExecutable, readSystemLinks, runQuiet } from "./host.js";
import { landlockGap, modelGap, namespaceGaps } from "./remedies.js";
import { chooseSandbox } from "./choose.js";
import {
  ALL_NAMESPACES,
  DEFAULT_SANDBOX_POLICY,
  type NamespaceSupport,
  type ProbeRecord,
  type SandboxBackend,
  type SandboxCapabilities,
  type SandboxGap,
} from "./types.js";

export interface DetectOptions {
  /** bwrap to use (default: `bwrap` on PATH). */
  bwrapPath?: string;
  /** The interpreter that asks the kernel for its Landlock ABI (default: `python3` on PATH). */
  python?: string;
  env?: NodeJS.ProcessEnv;
  /** Skip the per-process cache and detect again. */
  fresh?: boolean;
}

const PROBE_TIMEOUT_MS = 10_000;
const NO_NAMESPACES: NamespaceSupport = { user: false, pid: false, net: false, ipc: false, uts: false, cgroup: false };

/**
 * Asks the kernel for its Landlock ABI: landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) is
 * syscall 444 on every architecture. Prints the version, or minus the errno.
 */
export const LANDLOCK_PROBE =
  "import ctypes\n" +
  "libc = ctypes.CDLL(None, use_errno=True)\n" +
  "libc.syscall.restype = ctypes.c_long\n" +
  "r = libc.syscall(ctypes.c_long(444), None, ctypes.c_size_t(0), ctypes.c_uint32(1))\n" +
  "print(r if r >= 0 else -ctypes.get_errno())\n";

const cache = new Map<string, Promise<SandboxCapabilities>>();

/** What this host allows; cheap after the first call (cached per process and per options). */
export function detectSandbox(options: DetectOptions = {}): Promise<SandboxCapabilities> {
  const key = JSON.stringify([options.bwrapPath, options.python]);
  const hit = options.fresh ? undefined : cache.get(key);
  if (hit) return hit;
  const result = runDetection(options);
  cache.set(key, result);
  return result;
}

/** The Landlock ABI version this kernel offers through `python`, 0 when none or when python cannot run. */
export async function probeLandlockAbi(python: string, env?: NodeJS.ProcessEnv): Promise<number> {
  const r = await runQuiet([python, "-I", "-S", "-c", LANDLOCK_PROBE], { env, timeoutMs: PROBE_TIMEOUT_MS });
  return r.exitCode === 0 ? parseLandlockProbe(r.stdout) : 0;
}

/** One real launch with the flags a sandboxed extension gets, minus the paths that only an extension has. */
export function probeArgv(
  bwrap: string,
  truePath: string,
  ns: NamespaceSupport,
  links: Record<string, string>,
): string[] {
  return [
    bwrap,
    ...namespaceArgs(ns, !ns.net),
    ...processArgs(),
    ...baseMountArgs(undefined),
    ...systemMountArgs(links),
    "--",
    truePath,
  ];
}

async function probe(argv: string[], env?: NodeJS.ProcessEnv): Promise<ProbeRecord> {
  const r = await runQuiet(argv, { env, timeoutMs: PROBE_TIMEOUT_MS });
  return { argv, ok: r.exitCode === 0, exitCode: r.exitCode, stderr: r.stderr.trim() };
}

/**
 * Try every namespace; then without a user namespace (degraded: works where bwrap is setuid or runs as root);
 * then, when the loopback could not be set up, without a network namespace as well.
 */
async function probeNamespaces(
  bwrap: string,
  env: NodeJS.ProcessEnv | undefined,
): Promise<{ namespaces: NamespaceSupport; probes: ProbeRecord[] }> {
  const truePath = (await findExecutable("true", env)) ?? "/bin/true";
  const links = await readSystemLinks();
  const tries: NamespaceSupport[] = [{ ...ALL_NAMESPACES }, { ...ALL_NAMESPACES, user: false }];
  const probes: ProbeRecord[] = [];
  for (const ns of tries) {
    const record = await probe(probeArgv(bwrap, truePath, ns, links), env);
    probes.push(record);
    if (record.ok) return { namespaces: ns, probes };
    if (ns.net && !ns.user && classifyBwrapStderr(record.stderr) === "loopback") tries.push({ ...ns, net: false });
  }
  return { namespaces: { ...NO_NAMESPACES }, probes };
}

function offeredBackend(
  bwrapFound: boolean,
  ns: NamespaceSupport,
  fullOk: boolean,
  landlockAbi: number,
): SandboxBackend {
  if (bwrapFound && fullOk) return "bwrap";
  if (bwrapFound && Object.values(ns).some(Boolean)) return "bwrap-degraded";
  return landlockAbi > 0 ? "landlock" : "none";
}

/**
 * The backend a load with the default sandbox options gets, so that doctor and detectSandbox() say what load() then
 * does: a bwrap that runs only without a network namespace (a container with SYS_ADMIN and seccomp unconfined)
 * cannot keep an extension off the network, and the load takes Landlock instead.
 */
export function defaultLoadBackend(caps: SandboxCapabilities): SandboxBackend {
  return chooseSandbox("(detection)", { ...DEFAULT_SANDBOX_POLICY, mode: "preferred" }, caps).backend;
}

async function runDetection(options: DetectOptions): Promise<SandboxCapabilities> {
  const env = options.env ?? process.env;
  const files = await readEvidence(env);
  const facts = parseHostFiles(files);
  if (files.platform !== "linux") {
    const gap = modelGap("platform", facts)!;
    return {
      platform: files.platform,
      model: "platform",
      backend: "none",
      bwrap: undefined,
      namespaces: { ...NO_NAMESPACES },
      landlockAbi: 0,
      inContainer: false,
      probes: [],
      gaps: [gap],
    };
  }
  const [bwrapPath, python] = await Promise.all([
    findExecutable(options.bwrapPath ?? "bwrap", env),
    findExecutable(options.python ?? "python3", env),
  ]);
  const [version, landlockAbi, probed] = await Promise.all([
    bwrapPath
      ? runQuiet([bwrapPath, "--version"], { env }).then((r) => parseBwrapVersion(r.stdout))
      : Promise.resolve(undefined),
    python ? probeLandlockAbi(python, env) : Promise.resolve(0),
    bwrapPath
      ? probeNamespaces(bwrapPath, env)
      : Promise.resolve({ namespaces: { ...NO_NAMESPACES }, probes: [] as ProbeRecord[] }),
  ]);
  const full = probed.probes[0];
  const fullOk = full?.ok ?? false;
  const model = decideModel(facts, files.platform, {
    bwrapFound: bwrapPath !== undefined,
    fullOk,
    fullStderr: full?.stderr ?? "",
  });
  const container = diagnoseContainer(files, facts, fullOk, full?.stderr ?? "");
  const gaps: SandboxGap[] = [];
  const gap =
    (model === "container" ? containerGap(container, landlockAbi) : undefined) ?? modelGap(model, facts, full?.stderr);
  if (gap) gaps.push(gap);
  if (bwrapPath && !fullOk && Object.values(probed.namespaces).some(Boolean))
    gaps.push(...namespaceGaps(probed.namespaces));
  if (landlockAbi === 0) gaps.push(landlockGap());
  const caps: SandboxCapabilities = {
    platform: files.platform,
    model,
    backend: offeredBackend(bwrapPath !== undefined, probed.namespaces, fullOk, landlockAbi),
    bwrap: bwrapPath ? { path: bwrapPath, version } : undefined,
    namespaces: probed.namespaces,
    landlockAbi,
    inContainer: facts.container !== undefined,
    container,
    probes: probed.probes,
    gaps,
  };
  return { ...caps, backend: defaultLoadBackend(caps) };
}
