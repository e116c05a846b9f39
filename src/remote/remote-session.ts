// An Extension served by a guest that runs elsewhere: each session files a token, has the launcher start the guest
// with it, waits for its authenticated connection and walks it through the same handshake as a local guest.

import { ExtensionCrashedError, ExtensionLoadError, SandboxUnavailableError } from "../errors.js";
import { Extension } from "../extension.js";
import { guestControl } from "../lifecycle/guest-control.js";
import { buildInit } from "../lifecycle/init-message.js";
import { HealthMonitor } from "../lifecycle/health.js";
import { resolveRestartPolicy } from "../lifecycle/restart-policy.js";
import type { GuestSession, SessionHooks } from "../lifecycle/session.js";
import type { Logger } from "../logger.js";
import { resolveLimits } from "../rpc/limits.js";
import { RpcPeer } from "../rpc/peer.js";
import { TensorLink } from "../tensor/link.js";
import type { ClusterListener } from "./listener.js";
import { HEARTBEAT_TOKEN_ENV } from "./auth.js";
import { CUDA_OVER_TCP, CUDA_REFUSE_ENV } from "./local-tcp.js";
import { RemoteProcess } from "./remote-process.js";
import type { RemoteExtensionOptions, RemoteJob } from "./remote-types.js";

/** What a remote extension needs of its manager (ExtensionManager.remoteContext()). */
export interface RemoteContext {
  listener: () => Promise<ClusterListener>;
  resolveService: (name: string) => object | undefined;
  serviceNames: () => string[];
  logger: Logger;
  stopGraceMs: number;
  register: (extension: Extension) => void;
  unregister: (extension: Extension) => void;
}

const DEFAULT_START_TIMEOUT_MS = 120_000;
/** A job whose connection closed has this long to end on its own before it is stopped. */
const DISCONNECT_GRACE_MS = 2000;
/** The grace when the connection dropped with calls of ours in flight: no shutdown closes it that way. */
const LOST_GRACE_MS = 100;

export async function startRemoteExtension(
  context: RemoteContext,
  options: RemoteExtensionOptions,
): Promise<Extension> {
  const logger = options.logger ?? context.logger;
  const extension: Extension = new Extension({
    name: options.name,
    logger,
    callTimeoutMs: options.callTimeoutMs,
    stopGraceMs: context.stopGraceMs,
    sandbox: options.sandbox ?? { backend: "none", model: undefined, degraded: false },
    environment: {
      name: options.name,
      venvPath: "",
      pythonPath: "",
      basePython: "",
      pythonVersion: "",
      installer: "uv",
      backend: "uv",
      fingerprint: "",
      reused: true,
      installSandbox: undefined,
      systemSitePackages: false,
    },
    worker: options.worker,
    restart: options.restart === undefined ? undefined : resolveRestartPolicy(options.restart),
    // Runs after the constructor (a failed start, a stop), so `extension` is assigned by then.
    onFinished: async () => context.unregister(extension),
    startSession: (hooks, signal) => remoteSession(context, options, hooks, signal),
  });
  await extension.start(undefined);
  context.register(extension);
  return extension;
}

async function remoteSession(
  context: RemoteContext,
  options: RemoteExtensionOptions,
  hooks: SessionHooks,
  signal: AbortSignal | undefined,
): Promise<GuestSession> {
  const { name } = options;
  const listener = await context.listener();
  const pending = listener.expect(name);
  // The liveness check's own connection (the heartbeat's, as for a local TCP guest), dialled before the main one.
  const beat = options.liveness ? listener.expect(`${name} (heartbeat)`) : undefined;
  const abort = new AbortController();
  const onAbort = () => abort.abort(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  const timeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  let job: RemoteJob | undefined;
  let peer: RpcPeer | undefined;
  let timer: NodeJS.Timeout | undefined;
  let monitor: HealthMonitor | undefined;
  try {
    const started = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new ExtensionLoadError(name, `no connection and handshake within ${timeoutMs} ms`)),
        timeoutMs,
      );
      abort.signal.addEventListener("abort", () => reject(new ExtensionLoadError(name, "the start was aborted")), {
        once: true,
      });
    });
    started.catch(() => {});
    job = await Promise.race([
      options.launch(
        { ...pending.env, [CUDA_REFUSE_ENV]: "1", ...(beat ? { [HEARTBEAT_TOKEN_ENV]: beat.token } : {}) },
        abort.signal,
      ),
      started,
    ]);
    const gone = job.exited.then((exit) => {
      throw new ExtensionCrashedError(name, exit);
    });
    gone.catch(() => {});
    const socket = await Promise.race([pending.accepted, gone, started]);
    const process = new RemoteProcess(job, socket);
    // Tensors by value: there is no fd channel across machines.
    const limits = resolveLimits(options.protocolLimits);
    const tensors = new TensorLink("copy", name, limits, undefined, CUDA_OVER_TCP);
    let pythonVersion = "";
    let settle!: (
      error: Error | undefined,
      ready?: { methods: string[]; extensionClass: string; streams: string[] },
    ) => void;
    const ready = new Promise<{ methods: string[]; extensionClass: string; streams: string[] }>(
      (resolve, reject) => (settle = (e, r) => (e ? reject(e) : resolve(r!))),
    );
    let serving = false; // past the handshake: a failure ends the session, not the start
    const failLater = (error: Error) => (serving ? hooks.failure(error) : settle(error));
    peer = new RpcPeer(socket, {
      resolveTarget: context.resolveService,
      caller: name,
      kinds: [tensors.codec()],
      limits,
      // The connection often closes just before the job ends (a shutdown): give it the same grace as a local guest.
      // With our calls in flight it is a loss (a node, a network): they could never be answered, and the job's end
      // is known only by polling Ray, so the job is stopped at once and the calls fail within the 5 s.
      onDisconnect: () => {
        const grace = (peer?.stats.pending ?? 0) > 0 ? LOST_GRACE_MS : DISCONNECT_GRACE_MS;
        setTimeout(() => {
          if (!process.hasExited) process.kill();
        }, grace).unref();
      },
      onProtocolError: (error) => failLater(error),
      onControl: guestControl(name, {
        event: (event, payload) => hooks.event(event, payload),
        init: (step) => {
          pythonVersion = step.python;
          peer!.send(
            buildInit({
              name,
              modulePath: options.modulePath,
              extensionClass: options.extensionClass,
              tensors: tensors.init,
              limits,
              services: context.serviceNames(),
              inferenceMode: false,
            }),
          );
          if (step.batch) peer!.enableBatches();
        },
        ready: (step) =>
          settle(undefined, {
            methods: step.methods,
            extensionClass: step.extensionClass,
            streams: step.streams ?? [],
          }),
        fail: failLater,
      }),
    });
    socket.resume();
    void process.exited.then((exit) => {
      monitor?.stop();
      tensors.ended();
      settle(new ExtensionCrashedError(name, exit));
      hooks.exit(exit);
    });
    const info = await Promise.race([ready, started]);
    if (beat && options.liveness) {
      // Its heartbeat connection was complete before the main one was dialled: it is here, or it never comes.
      const beatSocket = await Promise.race([beat.accepted, started, gone]);
      const { timeoutMs } = options.liveness;
      monitor = new HealthMonitor(
        beatSocket,
        name,
        options.liveness,
        (error) => {
          context.logger.warn(`[${name}] its node stopped answering, stopping its job: ${error.message}`);
          process.lose(`pyisolate: no liveness answer within ${timeoutMs} ms: the node is lost, frozen or cut off`);
        },
        false,
      );
      beatSocket.resume();
    }
    serving = true;
    return { process, peer, info: { ...info, pythonVersion }, stopHealth: () => monitor?.stop() };
  } catch (error) {
    const cause = error as Error;
    // A node that cannot confine a "required" guest fails the load as a local host without a sandbox does.
    const failure =
      cause instanceof ExtensionLoadError || cause instanceof SandboxUnavailableError
        ? cause
        : new ExtensionLoadError(name, cause.message, { cause });
    pending.cancel(failure);
    beat?.cancel(failure);
    void beat?.accepted.then(
      (socket) => socket.destroy(),
      () => undefined,
    );
    monitor?.stop();
    peer?.close(failure);
    job?.kill();
    throw failure;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }
}
