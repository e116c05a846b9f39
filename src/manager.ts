// The public entry point: loads extensions (environment, process, handshake) and owns host services.

import { realpath } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startCallerTracking } from "./caller.js";
import { CONFIG_FILE_NAME, mergeOptions, readConfigFile } from "./config/config-file.js";
import { grantedServices, realRoots } from "./config/file-policy.js";
import type { ExtensionOptions, ManagerOptions } from "./config/options.js";
import { validateExtensionOptions, validateManagerOptions } from "./config/validate.js";
import { ensureEnvironment } from "./env/builder.js";
import { onHostExit } from "./host-exit.js";
import { ConfigError, ExtensionClosedError } from "./errors.js";
import type { Extension } from "./extension.js";
import type { UntypedEvents } from "./types/events.js";
import type { Shape, UntypedApi } from "./types/remote.js";
import { narrowLimits } from "./limits/types.js";
import { launchWorker, type LoadPlan, type WorkerContext } from "./launch-worker.js";
import { type HostIdentity, reclaimPrivateDirs, selfIdentity } from "./lifecycle/private-dirs.js";
import { narrowRestartPolicy } from "./lifecycle/restart-policy.js";
import { type ExtensionPool, startPool } from "./pool/pool.js";
import { type PoolOptions, splitPoolOptions } from "./pool/options.js";
import { prepareSharedRuntime } from "./prepare-shared-runtime.js";
import { createConsoleLogger, type Logger } from "./logger.js";
import { progressLogger, withProgressLog } from "./output/progress-log.js";
import { chooseSandbox, type SandboxChoice } from "./sandbox/choose.js";
import { detectSandbox } from "./sandbox/detect.js";
import { PathPins } from "./sandbox/pin-set.js";
import { pruneManaged, type ManagerPruneOptions, type PruneResult } from "./prune/manager-prune.js";
import { resolveSandboxPolicy } from "./sandbox/resolve-policy.js";
import type { SandboxCapabilities, SandboxPolicy } from "./sandbox/types.js";
import { RUNTIME_VERSION } from "./version.js";
import { loadOnRay, prepareRayLoad } from "./ray/load-on-ray.js";
import type { RayPlacement } from "./ray/options.js";
import { validatePlacement } from "./ray/options-check.js";
import { ClusterListener } from "./remote/listener.js";
import { resolveListen } from "./remote/listen-check.js";
import type { RemoteContext } from "./remote/remote-session.js";

const DEFAULT_STOP_GRACE_MS = 5_000;

export class ExtensionManager {
  readonly venvRoot: string;
  private readonly logger: Logger;
  private readonly options: ManagerOptions;
  private readonly services = new Map<string, object>();
  private readonly extensions = new Map<string, Extension>();
  /** Names being loaded, so that a second load of the same name fails at once. */
  private readonly loading = new Set<string>();
  /** Deprecation notes already given: each is told once per manager, however many loads repeat the old name. */
  private readonly deprecationsTold = new Set<string>();
  private closed = false;
  /** Detection runs once per manager, at the first sandboxed load. */
  private capabilities: Promise<SandboxCapabilities> | undefined;
  private warnedDegraded = false;
  /** This host's identity for the private folders' marker; the first load also reclaims the folders of dead hosts. */
  private identity: Promise<HostIdentity | undefined> | undefined;
  private readonly pools = new Map<string, ExtensionPool>();
  private readonly forgetHostExit: () => void;
  /** The cluster listener, once something needed it (never opened unless asked: cluster.listen or a tcp load). */
  private listenerOpen: Promise<ClusterListener> | undefined;
  private readonly killOnExit = () => {
    for (const extension of [
      ...this.extensions.values(),
      ...[...this.pools.values()].flatMap((pool) => pool.extensions()),
    ]) {
      if (extension.processGroup !== undefined) {
        try {
          // SIGTERM, not SIGKILL: the guest's supervisor must live to kill what the extension started (see
          // process/guest-process.ts); it SIGKILLs the extension itself, so nothing waits on the extension's goodwill.
          process.kill(-extension.processGroup, "SIGTERM");
        } catch {
          // Already gone.
        }
      }
    }
  };

  /** Warns of a deprecated option once per manager. */
  private tellDeprecated(message: string): void {
    if (this.deprecationsTold.has(message)) return;
    this.deprecationsTold.add(message);
    this.logger.warn(`pyisolate: ${message}`);
  }

  constructor(options: ManagerOptions) {
    const deprecated: string[] = [];
    this.options = validateManagerOptions(options, (message) => deprecated.push(message));
    this.venvRoot = this.options.venvRoot;
    this.logger = this.options.logger ?? createConsoleLogger();
    for (const message of deprecated) this.tellDeprecated(message);
    this.forgetHostExit = onHostExit(this.killOnExit);
  }

  /**
   * Makes a host object callable under `name` from every extension whose `services` option (default: all) names
   * it: Python's `ProxiedSingleton` subclass of the same name (or remote id) forwards its calls here. Only public
   * methods are callable; a method learns the calling extension's name from `callingExtension()`.
   * Keyword arguments from Python (`Svc().send(event, data, sid=None)`) arrive as one extra trailing
   * argument, a plain object (`send(event, data, { sid: null })`), only when the caller passed any.
   */
  provide(name: string, service: object): void {
    if (typeof name !== "string" || !/^[A-Za-z_][\w.]*$/.test(name)) {
      throw new ConfigError(`service name ${JSON.stringify(name)} must be an identifier`, { key: "name" });
    }
    if (typeof service !== "object" || service === null) {
      throw new ConfigError(`service "${name}" must be an object with methods`, { key: "service" });
    }
    this.services.set(name, service);
    startCallerTracking(); // now, not at the first call: see caller.ts
  }

  /** Removes a host service; calls to it fail with LookupError in Python. */
  unprovide(name: string): boolean {
    return this.services.delete(name);
  }

  /** The loaded extension of this name, if any; `Api` and `Events` type it as `load<Api, Events>()` does. */
  get<Api extends Shape = UntypedApi, Events extends Shape = UntypedEvents>(
    name: string,
  ): Extension<Api, Events> | undefined {
    return this.extensions.get(name) as Extension<Api, Events> | undefined;
  }

  /** Every loaded extension. */
  list(): Extension[] {
    return [...this.extensions.values()];
  }

  /**
   * Builds (or reuses) the extension's venv, starts its process and waits until it is ready. `Api` types
   * `ext.proxy` (`Remote<Api>`), `Events` the extension's events; `npx pyisolate types <folder>` writes both.
   */
  async load<Api extends Shape = UntypedApi, Events extends Shape = UntypedEvents>(
    options: ExtensionOptions,
  ): Promise<Extension<Api, Events>> {
    if (typeof options === "object" && options !== null && "workers" in options) {
      throw new ConfigError("workers: load() runs one process; manager.pool({ ..., workers }) runs several", {
        key: "workers",
      });
    }
    // Placed on a Ray cluster: a job there runs the guest, which dials back over TCP+TLS (src/ray/load-on-ray.ts).
    const placement = validatePlacement((options as { placement?: unknown } | null)?.placement);
    if (placement?.ray) {
      if (this.closed) throw new ExtensionClosedError("this ExtensionManager is closed");
      return loadOnRay(this.remoteContext(), this.options.cluster?.ray, options, placement.ray) as Promise<
        Extension<Api, Events>
      >;
    }
    return this.loadWith(options, async (plan, release) => {
      // `let`: onFinished reads it, and may run before the assignment (a failed start).
      let extension: Extension | undefined;
      // eslint-disable-next-line prefer-const
      extension = await launchWorker(plan, this.workerContext(), undefined, async () => {
        if (extension && this.extensions.get(plan.name) === extension) this.extensions.delete(plan.name);
        release();
      });
      this.extensions.set(plan.name, extension);
      // With a restart policy the pins stay open as long as the extension lives: each restart binds the same objects.
      const owned = plan.restart !== undefined && extension.state !== "crashed" && extension.state !== "stopped";
      // The types are the caller's declaration of what the extension offers; nothing at run time depends on them.
      return { result: extension as unknown as Extension<Api, Events>, ownsPins: owned };
    });
  }

  /**
   * Starts `workers` processes of one extension on one venv (built once) and returns them as a pool: calls go to the
   * least-busy worker, a crash takes down only that worker's calls, each worker restarts per `restart` (docs/pools.md).
   */
  async pool<Api extends Shape = UntypedApi, Events extends Shape = UntypedEvents>(
    options: PoolOptions,
  ): Promise<ExtensionPool<Api, Events>> {
    const { workers, maxInFlight, rest } = splitPoolOptions(options);
    // Placed on a Ray cluster: one job per worker (src/ray/load-on-ray.ts).
    const placement = validatePlacement((rest as { placement?: unknown }).placement);
    if (placement?.ray)
      return (await this.poolOnRay(rest, workers, maxInFlight, placement.ray)) as unknown as ExtensionPool<Api, Events>;
    return this.loadWith(rest, async (plan, release) => {
      // eslint-disable-next-line prefer-const -- onGone reads it, and may run before the assignment (a failed start)
      let pool: ExtensionPool | undefined;
      const onGone = () => {
        if (pool && this.pools.get(plan.name) === pool) this.pools.delete(plan.name);
        release();
      };
      pool = (await startPool<Api, Events>({
        name: plan.name,
        workers,
        maxInFlight,
        logger: plan.logger,
        launch: (index, onFinished) => launchWorker(plan, this.workerContext(), index, onFinished),
        onFinished: onGone,
      })) as unknown as ExtensionPool;
      this.pools.set(plan.name, pool);
      return { result: pool as unknown as ExtensionPool<Api, Events>, ownsPins: true };
    });
  }

  /** `workers` Ray jobs of one extension, checked and uploaded once, as a pool (the same dispatch and isolation). */
  private async poolOnRay(
    options: ExtensionOptions,
    workers: number,
    maxInFlight: number | undefined,
    placement: RayPlacement,
  ): Promise<ExtensionPool> {
    if (this.closed) throw new ExtensionClosedError("this ExtensionManager is closed");
    const prepared = await prepareRayLoad(this.remoteContext(), this.options.cluster?.ray, options, placement);
    const { name } = prepared;
    if (this.extensions.has(name) || this.pools.has(name) || this.loading.has(name)) {
      throw new ConfigError(`an extension named "${name}" is already loaded`, { key: "name" });
    }
    this.loading.add(name);
    try {
      // onFinished reads it, and may run before it is set (a failed start): then it finds none.
      const made: { pool?: ExtensionPool } = {};
      made.pool = await startPool({
        name,
        workers,
        maxInFlight,
        logger: options.logger ?? this.logger,
        launch: (index, onFinished) => prepared.start({ index, onFinished }),
        onFinished: () => {
          if (made.pool && this.pools.get(name) === made.pool) this.pools.delete(name);
        },
      });
      this.pools.set(name, made.pool);
      return made.pool;
    } finally {
      this.loading.delete(name);
    }
  }

  /** The pool of this name, if any. */
  getPool<Api extends Shape = UntypedApi, Events extends Shape = UntypedEvents>(
    name: string,
  ): ExtensionPool<Api, Events> | undefined {
    return this.pools.get(name) as ExtensionPool<Api, Events> | undefined;
  }

  /**
   * One load's shared part: options checked and narrowed by the file, the sandbox chosen, the venv built, the paths
   * pinned. `start` launches what runs on it; `release` (called once its processes are all gone) closes the pins when
   * `start` said it owns them.
   */
  private async loadWith<T>(
    options: ExtensionOptions,
    start: (plan: LoadPlan, release: () => void) => Promise<{ result: T; ownsPins: boolean }>,
  ): Promise<T> {
    if (this.closed) throw new ExtensionClosedError("this ExtensionManager is closed");
    // Code options are checked on their own first, so that their errors do not name the config file.
    const checked = validateExtensionOptions(options, (message) => this.tellDeprecated(message));
    const modulePath = await realpath(checked.modulePath);
    // The folder and its pyisolate.yaml are the extension's: the file may narrow, never widen (file-policy.ts).
    const fromFile = readConfigFile(modulePath, {
      fileEnv: checked.fileEnv,
      dependencyPaths: checked.fileDependencyPaths,
      name: checked.name,
      gpu: checked.sandbox?.gpu === true,
      sharedRuntimes: Object.keys(this.options.sharedRuntimes ?? {}),
      onWarning: (message) => this.logger.warn(`[${checked.name}] ${message}`),
    });
    const mayCall = grantedServices(checked.services, fromFile.services);
    // The code's installer under its new name (a deprecated `backend` moved), so that it wins over the file's.
    const merged = validateExtensionOptions(
      mergeOptions(fromFile, { ...options, backend: undefined, installer: checked.installer, modulePath }),
    );
    // Per key the smaller of the code's and the file's: the file may add or tighten a limit, never loosen one.
    const limits = narrowLimits(checked.limits, fromFile.limits);
    const name = merged.name;
    // A load's own logger takes this extension's lines and warnings; the manager's takes the rest.
    const logger = checked.logger ?? this.logger;
    if (this.extensions.has(name) || this.pools.has(name) || this.loading.has(name)) {
      throw new ConfigError(`an extension named "${name}" is already loaded`, { key: "name" });
    }
    this.loading.add(name);
    // Every host path the sandbox gets is opened once, when it is checked, and bound or ruled by that descriptor.
    const pins = new PathPins();
    let pinsOwned = false;
    try {
      pins.pin(modulePath, "modulePath");
      const policy = await resolveSandboxPolicy({
        fromCode: options.sandbox,
        fromFile: fromFile.sandbox,
        modulePath,
        configFile: join(modulePath, CONFIG_FILE_NAME),
        pins,
      });
      // Before the venv is built: a load that cannot be sandboxed fails at once.
      const { choice, capabilities } = await this.chooseSandbox(name, policy, logger);
      const sharedRuntime = await prepareSharedRuntime({ manager: this.options, extension: merged, mode: policy.mode });
      const environment = await ensureEnvironment({
        name,
        venvRoot: this.venvRoot,
        dependencies: merged.dependencies,
        // A venv linked to a layer must run the layer's Python (its compiled modules are built for it).
        python: merged.python ?? (sharedRuntime && this.options.sharedRuntimes?.[sharedRuntime.name]?.python),
        sharedRuntime,
        systemSitePackages: merged.systemSitePackages,
        indexUrl: merged.indexUrl,
        extraIndexUrls: merged.extraIndexUrls,
        findLinks: merged.findLinks,
        installer: merged.installer ?? this.options.installer ?? "auto",
        runtimeVersion: RUNTIME_VERSION,
        onProgress: withProgressLog(merged.onProgress, progressLogger(name, logger)),
        signal: merged.signal,
        // Installs run an sdist's build code: they are sandboxed under the same mode and backend as the extension.
        sandbox: {
          mode: policy.mode,
          backend: policy.backend,
          network: policy.network,
          extensionDir: modulePath,
          trustedIndex: {
            indexUrl: options.indexUrl ?? null,
            extraIndexUrls: options.extraIndexUrls ?? [],
            findLinks: options.findLinks ?? [],
          },
          trustedDependencies: checked.dependencies,
          dependencyRoots: realRoots(checked.fileDependencyPaths),
        },
      });
      // The code grants restarts; the extension's file may only narrow them (or turn them off).
      const restart = narrowRestartPolicy(checked.restartPolicy, fromFile.restart);
      const plan: LoadPlan = {
        name,
        logger,
        checked,
        merged,
        limits,
        modulePath,
        pins,
        policy,
        choice,
        capabilities,
        environment,
        sharedRuntime,
        restart,
        mayCall,
      };
      let released = false;
      const started = await start(plan, () => {
        released = true;
        if (pinsOwned) pins.close();
      });
      // Everything it started may already be gone: then the pins close below, now.
      pinsOwned = started.ownsPins && !released;
      return started.result;
    } finally {
      // The child holds its own copies from the spawn on; a load that failed before it never needs them.
      if (!pinsOwned) pins.close();
      this.loading.delete(name);
    }
  }

  /**
   * Removes from venvRoot what none of this manager's extensions, pools or shared runtimes uses and no process
   * used within `unusedForDays` (default 30); `dryRun` lists it instead. See docs/packaging.md.
   */
  prune(options?: ManagerPruneOptions): Promise<PruneResult> {
    const names = [...this.extensions.keys(), ...this.pools.keys(), ...this.loading];
    return pruneManaged(this.venvRoot, { names, shared: Object.keys(this.options.sharedRuntimes ?? {}) }, options);
  }

  /** Stops every extension and refuses new loads. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled(
      [...this.extensions.values(), ...this.pools.values()].map((extension) => extension.stop()),
    );
    await this.listenerOpen?.then(
      (listener) => listener.close(),
      () => undefined,
    );
    this.forgetHostExit();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** What a worker's launch needs of the manager. */
  private workerContext(): WorkerContext {
    return {
      services: this.services,
      hostFolders: () => this.hostFolders(),
      forwardOutput: this.options.forwardOutput ?? true,
      managerLogger: this.options.logger,
      stopGraceMs: this.options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS,
      listener: () => this.clusterListener(),
    };
  }

  /** @internal What src/remote/slot.ts's loadRemote() needs: the listener, the services, registration. */
  remoteContext(): RemoteContext {
    return {
      listener: () => this.clusterListener(),
      resolveService: (name) => this.services.get(name),
      serviceNames: () => [...this.services.keys()],
      logger: this.logger,
      stopGraceMs: this.options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS,
      register: (extension) => {
        if (this.extensions.has(extension.name))
          throw new ConfigError(`an extension named "${extension.name}" is already loaded`, { key: "name" });
        this.extensions.set(extension.name, extension);
      },
      unregister: (extension) => {
        if (this.extensions.get(extension.name) === extension) this.extensions.delete(extension.name);
      },
    };
  }

  /**
   * @internal The TLS listener remote and `transport: "tcp"` guests connect back to, opened once, at the first call,
   * where `cluster.listen` says (default 127.0.0.1, a free port); closed by close().
   */
  clusterListener(): Promise<ClusterListener> {
    if (this.closed) return Promise.reject(new ExtensionClosedError("this ExtensionManager is closed"));
    this.listenerOpen ??= ClusterListener.open(resolveListen(this.options.cluster?.listen), this.logger);
    return this.listenerOpen;
  }

  /** Once per manager: who we are, and the private folders of hosts that died (SIGKILL) with extensions running removed. */
  private hostFolders(): Promise<HostIdentity | undefined> {
    this.identity ??= (async () => {
      const self = await selfIdentity();
      if (self) {
        const removed = await reclaimPrivateDirs(tmpdir(), self);
        if (removed.length)
          this.logger.info(
            `removed ${removed.length} private folder(s) of extensions whose host died: ${removed.join(", ")}`,
          );
      }
      return self;
    })();
    return this.identity;
  }

  /** Detects once, decides the backend for this load, and says so: info for the backend, a warning once for a fallback. */
  private async chooseSandbox(
    name: string,
    policy: SandboxPolicy,
    logger: Logger,
  ): Promise<{ choice: SandboxChoice; capabilities: SandboxCapabilities | undefined }> {
    if (policy.mode === "disabled") {
      logger.info(`[${name}] sandbox disabled by configuration: the extension runs with the host user's rights`);
      return { choice: { backend: "none", degraded: false }, capabilities: undefined };
    }
    this.capabilities ??= detectSandbox();
    const capabilities = await this.capabilities;
    const choice = chooseSandbox(name, policy, capabilities);
    if (choice.degraded && !this.warnedDegraded) {
      this.warnedDegraded = true;
      const remedies = capabilities.gaps.flatMap((g) => g.remedy);
      logger.warn(
        `sandbox: extensions run with the "${choice.backend}" backend, less than full bwrap (${choice.shortfall}).` +
          (remedies.length ? ` To fix it:\n  ${remedies.join("\n  ")}` : ""),
      );
    }
    logger.info(
      `[${name}] sandbox: ${choice.backend} (restriction model "${capabilities.model}"${choice.degraded ? ", degraded" : ""})`,
    );
    return { choice, capabilities };
  }
}
