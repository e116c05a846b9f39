// One process of a load: its private folders, its sandbox's launch and its handshake, on the plan that the manager
// made once for the load (options, sandbox choice, venv, pins). load() runs it once, pool() once per worker.

import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { cudaIpcWanted } from "./config/env-policy.js";
import type { validateExtensionOptions } from "./config/validate.js";
import type { Environment } from "./env/builder.js";
import type { Extension } from "./extension.js";
import { launchExtension } from "./launch-extension.js";
import type { narrowLimits } from "./limits/types.js";
import { type HostIdentity, makePrivateDirs } from "./lifecycle/private-dirs.js";
import type { RestartPolicy } from "./lifecycle/restart-policy.js";
import type { Logger } from "./logger.js";
import { outputForwarder } from "./output/forward.js";
import type { prepareSharedRuntime } from "./prepare-shared-runtime.js";
import { RUNTIME_ROOT } from "./runtime-paths.js";
import type { SandboxChoice } from "./sandbox/choose.js";
import type { PathPins } from "./sandbox/pin-set.js";
import { prepareSandbox } from "./sandbox/prepare.js";
import type { ClusterListener } from "./remote/listener.js";
import type { SandboxCapabilities, SandboxInfo, SandboxPolicy } from "./sandbox/types.js";

const DEFAULT_START_TIMEOUT_MS = 120_000;

/** What every process of one load runs on: checked options, the chosen sandbox, the venv, the pinned paths. */
export interface LoadPlan {
  name: string;
  logger: Logger;
  checked: ReturnType<typeof validateExtensionOptions>;
  merged: ReturnType<typeof validateExtensionOptions>;
  limits: ReturnType<typeof narrowLimits>;
  modulePath: string;
  pins: PathPins;
  policy: SandboxPolicy;
  choice: SandboxChoice;
  capabilities: SandboxCapabilities | undefined;
  environment: Environment;
  sharedRuntime: Awaited<ReturnType<typeof prepareSharedRuntime>>;
  restart: RestartPolicy | undefined;
  mayCall: (service: string) => boolean;
}
/** What a launch needs of its manager. */
export interface WorkerContext {
  services: ReadonlyMap<string, object>;
  /** This host's identity for the private folders' marker (the manager's, once). */
  hostFolders: () => Promise<HostIdentity | undefined>;
  forwardOutput: boolean;
  managerLogger: Logger | undefined;
  stopGraceMs: number;
  /** The manager's cluster listener, opened at the first use (a `transport: "tcp"` load). */
  listener: () => Promise<ClusterListener>;
}

/** One process on a plan: its private folders, its sandbox's launch, its handshake. `worker`: its index in a pool. */
export async function launchWorker(
  plan: LoadPlan,
  context: WorkerContext,
  worker: number | undefined,
  onGone: () => void | Promise<void>,
): Promise<Extension> {
  const { name, logger, checked, merged, limits, environment, policy, capabilities, choice } = plan;
  const privateDirs = await makePrivateDirs(tmpdir(), name, await context.hostFolders());
  const privateRoot = privateDirs.root;
  const prepared = await prepareSandbox({
    backend: choice.backend,
    capabilities,
    policy,
    pins: plan.pins,
    venv: environment.venvPath,
    pythonPath: environment.basePython,
    systemSitePackages: environment.systemSitePackages,
    sharedRuntime: environment.sharedRuntime?.venvPath,
    modulePath: plan.modulePath,
    runtimeDir: RUNTIME_ROOT,
    home: privateDirs.home,
    tmpdir: privateDirs.tmpdir,
    tmpSizeBytes: limits?.diskMiB === undefined ? undefined : limits.diskMiB * 1024 * 1024,
    onWarning: (message) => logger.warn(`[${name}] ${message}`),
  }).catch(async (error: unknown) => {
    await rm(privateRoot, { recursive: true, force: true });
    throw error;
  });
  const sandbox: SandboxInfo = { backend: choice.backend, model: capabilities?.model, degraded: choice.degraded };
  return launchExtension({
    name,
    worker,
    modulePath: prepared.modulePath,
    pythonPath: prepared.pythonPath,
    venv: prepared.venv,
    sandbox,
    sandboxLaunch: prepared.launch,
    extensionClass: merged.extensionClass,
    environment,
    env: merged.env,
    privateDirs,
    // A service not granted answers exactly as one never provided: nothing tells the extension it exists.
    resolveService: (service) => (plan.mayCall(service) ? context.services.get(service) : undefined),
    // Told at each start: a ProxiedSingleton the host does not provide stays local in the extension (pyisolate 0.10).
    serviceNames: () => [...context.services.keys()].filter(plan.mayCall),
    // pyisolate runs extensions that share torch under inference_mode; a shared runtime layer is our shared torch.
    inferenceMode: merged.inferenceMode ?? plan.sharedRuntime !== undefined,
    logger,
    forwardOutput: outputForwarder(worker === undefined ? name : `${name}#${worker}`, {
      enabled: context.forwardOutput,
      logger: checked.logger ?? context.managerLogger,
    }),
    callTimeoutMs: merged.callTimeoutMs,
    startTimeoutMs: merged.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
    stopGraceMs: context.stopGraceMs,
    signal: merged.signal,
    tensorTransport: merged.tensorTransport,
    bytesMemfdThreshold: merged.bytesMemfdThreshold,
    idlePollMicros: merged.idlePollMicros,
    // The option, else the host's own PYISOLATE_ENABLE_CUDA_IPC=1 (pyisolate's switch), which the clean env drops.
    cudaIpc: cudaIpcWanted(checked.cudaIpc, process.env),
    limits: merged.protocolLimits,
    resourceLimits: limits,
    restart: plan.restart,
    health: merged.healthPolicy,
    output: merged.output,
    transport: merged.transport,
    listener: context.listener,
    onFinished: async () => {
      await onGone();
      await rm(privateRoot, { recursive: true, force: true });
    },
  });
}
