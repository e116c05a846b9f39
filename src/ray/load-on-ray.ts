// `load({ placement: { ray } })`: the extension packed with the guest runtime, uploaded once to the cluster, and run
// as a Ray job per session, its guest dialling back over TCP+TLS (src/remote/slot.ts).

import { realpath } from "node:fs/promises";
import { basename, join } from "node:path";
import { mergeOptions, readConfigFile } from "../config/config-file.js";
import { grantedServices } from "../config/file-policy.js";
import type { ExtensionOptions } from "../config/options.js";
import { validateExtensionOptions } from "../config/validate.js";
import { ConfigError, ExtensionClosedError } from "../errors.js";
import type { Extension } from "../extension.js";
import { startRemoteExtension, type RemoteContext } from "../remote/remote-session.js";
import { RUNTIME_ROOT } from "../runtime-paths.js";
import type { SandboxMode } from "../vocabulary.js";
import { guestJobSubmission, moduleDirInPackage } from "./job-spec.js";
import { RayJobsClient } from "./jobs-client.js";
import type { RayClusterOptions, RayPlacement } from "./options.js";
import { buildPackage } from "./package-zip.js";
import { startRayGuestJob } from "./ray-job.js";

const DEFAULT_POLL_MS = 500;
/** A Ray job's start includes the venv of its dependencies on the node: slower than a local start. */
const DEFAULT_REMOTE_START_TIMEOUT_MS = 300_000;
/** A node that leaves the ping this long unanswered is lost: with the job's stop, its calls fail within the 5 s. */
const DEFAULT_LIVENESS_TIMEOUT_MS = 2000;
const LIVENESS_INTERVAL_MS = 500;

/** A dependency that names a path on this machine cannot be installed on a node. */
function checkRemoteDependencies(dependencies: readonly string[]): void {
  for (const dependency of dependencies) {
    if (/^(\.|\/|file:)/.test(dependency.trim()) || /\s@\s*file:/.test(dependency)) {
      throw new ConfigError(
        `dependencies: "${dependency}" is a path on this machine; an extension placed on Ray installs from an index the nodes reach`,
        { key: "dependencies" },
      );
    }
  }
}

/** The sandbox mode for the node: the code's, which the extension's file may only tighten to "required". */
function remoteSandboxMode(code: SandboxMode | undefined, file: SandboxMode | undefined): SandboxMode {
  if (file === "required") return "required";
  return code ?? "required";
}

/** An extension checked and uploaded once: each start() runs one guest of it as its own Ray job. */
export interface PreparedRayLoad {
  /** Its name, as its options and file decided. */
  name: string;
  /** A plain load (registered with the manager), or a pool's worker `index` (its pool tracks it through `onFinished`). */
  start(worker?: { index: number; onFinished: () => void }): Promise<Extension>;
}

/** Loads one extension onto the cluster; called by manager.load() when `placement.ray` is given. */
export async function loadOnRay(
  context: RemoteContext,
  cluster: RayClusterOptions | undefined,
  options: ExtensionOptions,
  placement: RayPlacement,
): Promise<Extension> {
  return (await prepareRayLoad(context, cluster, options, placement)).start();
}

/** The options checked, merged with the extension's file, and the package uploaded; nothing runs yet. */
export async function prepareRayLoad(
  context: RemoteContext,
  cluster: RayClusterOptions | undefined,
  options: ExtensionOptions,
  placement: RayPlacement,
): Promise<PreparedRayLoad> {
  if (!cluster) {
    throw new ConfigError(
      'placement.ray needs a cluster: new ExtensionManager({ cluster: { ray: { address: "http://127.0.0.1:8265" } } })',
      { key: "placement" },
    );
  }
  const checked = validateExtensionOptions(options);
  const modulePath = await realpath(checked.modulePath);
  // The extension's own file may add dependencies and tighten the sandbox, as for a local load.
  const fromFile = readConfigFile(modulePath, { name: checked.name, dependencyPaths: [], fileEnv: checked.fileEnv });
  const merged = validateExtensionOptions(mergeOptions(fromFile, { ...options, modulePath, placement: undefined }));
  checkRemoteDependencies(merged.dependencies);
  const moduleName = basename(modulePath);
  const client = new RayJobsClient(cluster.address);
  // Uploaded once per content: an unchanged extension and runtime reuse the package the cluster already has.
  const pkg = await buildPackage([
    { dir: join(RUNTIME_ROOT, "pyisolate"), prefix: "pyisolate" },
    { dir: modulePath, prefix: moduleDirInPackage(moduleName) },
  ]);
  if (!(await client.hasPackage(pkg.uri))) await client.uploadPackage(pkg.uri, pkg.zip);
  const sandboxMode = remoteSandboxMode(options.sandbox?.mode, fromFile.sandbox?.mode);
  const name = merged.name;
  // The services it may call: the code's grant, narrowed by its file, as for a local load.
  const mayCall = grantedServices(checked.services, fromFile.services);
  const granted: RemoteContext = {
    ...context,
    resolveService: (service) => (mayCall(service) ? context.resolveService(service) : undefined),
    serviceNames: () => context.serviceNames().filter(mayCall),
  };
  const start = (worker?: { index: number; onFinished: () => void }) =>
    startRemoteExtension(
      // A pool's worker is the pool's, not the manager's: it tells its pool when it is finished.
      worker ? { ...granted, register: () => {}, unregister: () => worker.onFinished() } : granted,
      {
        name,
        worker: worker?.index,
        modulePath: moduleDirInPackage(moduleName),
        extensionClass: merged.extensionClass,
        // What the node gives is known once its guest reports (ext.placement.sandbox); "required" fails the load without it.
        sandbox: {
          backend: sandboxMode === "disabled" ? "none" : "landlock",
          model: undefined,
          degraded: sandboxMode === "preferred",
        },
        callTimeoutMs: merged.callTimeoutMs,
        startTimeoutMs: merged.startTimeoutMs ?? DEFAULT_REMOTE_START_TIMEOUT_MS,
        restart: options.restart,
        liveness: {
          intervalMs: LIVENESS_INTERVAL_MS,
          timeoutMs: cluster.livenessTimeoutMs ?? DEFAULT_LIVENESS_TIMEOUT_MS,
        },
        protocolLimits: options.protocolLimits,
        logger: options.logger,
        async launch(env, signal) {
          if (signal.aborted) throw new ExtensionClosedError(`loading "${name}" was aborted`);
          const submission = guestJobSubmission({
            name,
            packageUri: pkg.uri,
            moduleName,
            dependencies: merged.dependencies,
            placement,
            env: { ...merged.env, ...env },
            sandboxMode,
            pipInstallOptions: cluster.pipInstallOptions,
          });
          const job = await startRayGuestJob(client, submission, {
            name,
            pollMs: cluster.pollMs ?? DEFAULT_POLL_MS,
            signal,
            autoscaling: cluster.autoscaling,
          });
          if (job.report.sandbox.backend === "none" && sandboxMode === "preferred")
            (options.logger ?? context.logger).warn(
              `[${name}] runs unconfined on Ray node ${job.placement.nodeId} (${job.placement.nodeAddress}): ${job.report.sandbox.reason}`,
            );
          return {
            placement: { ...job.placement, sandbox: job.report.sandbox },
            pid: job.pid,
            exited: job.exited,
            kill: job.kill,
          };
        },
      },
    );
  return { name, start };
}
