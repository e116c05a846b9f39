// Starts one guest process and walks it through the handshake (hello -> init -> ready, or fatal): one session of
// an extension. A restart is one more session for the same Extension object.

import type { Environment } from "./env/builder.js";
import { constants as osConstants } from "node:os";
import { type ExitInfo, ExtensionCrashedError, ExtensionLoadError, ProtocolError, CallAbortedError } from "./errors.js";
import { Extension } from "./extension.js";
import type { GuestSession, SessionHooks } from "./lifecycle/session.js";
import { HealthMonitor, type HealthPolicy } from "./lifecycle/health.js";
import type { RestartPolicy } from "./lifecycle/restart-policy.js";
import type { Logger } from "./logger.js";
import { GuestProcess } from "./process/guest-process.js";
import { buildLaunchCommand } from "./process/launch.js";
import { buildCleanEnv } from "./process/clean-env.js";
import type { SandboxLaunch, VenvActivation } from "./sandbox/prepare.js";
import type { SandboxInfo } from "./sandbox/types.js";
import type { ReadyMessage } from "./rpc/protocol.js";
import { guestControl } from "./lifecycle/guest-control.js";
import { buildInit } from "./lifecycle/init-message.js";
import { RpcPeer } from "./rpc/peer.js";
import { resolveLimits, type ProtocolLimits } from "./rpc/limits.js";
import { TensorLink, type TensorTransportOption } from "./tensor/link.js";
import { enforceLimits, type Enforcement } from "./limits/enforce.js";
import type { ResourceLimits } from "./limits/types.js";
import { outputGate } from "./output/wiring.js";
import type { OutputForwarder } from "./output/forward.js";
import { DEFAULT_OUTPUT_LIMITS, type OutputLimits } from "./output/output-limits.js";
import type { ClusterListener, PendingConnection } from "./remote/listener.js";
import { acceptOrFail, CUDA_OVER_TCP, CUDA_REFUSE_ENV, tcpLaunch, withoutDialEnv } from "./remote/local-tcp.js";
import { HEARTBEAT_TOKEN_ENV } from "./remote/auth.js";
import type { Duplex } from "node:stream";

const DISCONNECT_GRACE_MS = 2000;

export interface LaunchExtensionInput {
  name: string;
  /** Its index in a pool (manager.pool()); absent for a plain load. */
  worker?: number;
  modulePath: string;
  extensionClass: string | undefined;
  environment: Environment;
  /** The interpreter to start: the base one the host recorded for the venv (never the venv's bin/python). */
  pythonPath: string;
  /** The venv the guest activates after confinement. */
  venv: VenvActivation;
  /** What confines the guest, for the extension object; `sandboxLaunch` is how (its pinned fds stay open while it may restart). */
  sandbox: SandboxInfo;
  sandboxLaunch: SandboxLaunch;
  env: Record<string, string> | undefined;
  privateDirs: { home: string; tmpdir: string };
  resolveService: (name: string) => object | undefined;
  /** The services this extension may call when a process starts (init's `services`: their singletons are remote). */
  serviceNames: () => string[];
  /** Hooks and calls under torch.inference_mode() (decided by the manager: the option, or a shared runtime). */
  inferenceMode: boolean;
  /** How long its event loop polls for a message before sleeping (the `idlePollMicros` option). */
  idlePollMicros?: number;
  logger: Logger;
  /** Where its output lines go besides the events (never the host's stdout); undefined: events only. */
  forwardOutput: OutputForwarder | undefined;
  callTimeoutMs: number | undefined;
  startTimeoutMs: number;
  stopGraceMs: number;
  signal: AbortSignal | undefined;
  onFinished: () => Promise<void>;
  /** How tensors travel to and from this extension (default "auto"). */
  tensorTransport?: TensorTransportOption;
  /** Bytes of this many or more cross as a sealed memfd where tensors do (default 1 MiB; docs/protocol.md, Bytes). */
  bytesMemfdThreshold?: number;
  /** CUDA IPC for this extension's CUDA tensors: true sets PYISOLATE_ENABLE_CUDA_IPC=1, false keeps it out. */
  cudaIpc?: boolean;
  /** What its frames and output may cost the host (checked by validateExtensionOptions). */
  limits?: ProtocolLimits;
  /** What its process tree may use (rlimits in the guest, the host's watchdog, bwrap's tmpfs size). */
  resourceLimits?: ResourceLimits;
  /** Bring it back after a crash (absent: a crash is final). */
  restart?: RestartPolicy;
  /** The heartbeat (absent: off). */
  health?: HealthPolicy;
  /** How many lines, events and bytes per second each of its streams may pass (the flood gate). */
  output?: OutputLimits;
  /** The connection to the guest: inherited Unix sockets (default), or TCP+TLS to the manager's listener. */
  transport?: "unix" | "tcp";
  /** The manager's cluster listener, opened on first use (tcp only). */
  listener?: () => Promise<ClusterListener>;
}

/** Rejects after `ms` with `why`. */
function timeout(ms: number, why: string): Promise<never> {
  return new Promise((_, reject) => setTimeout(() => reject(new ProtocolError(why)), ms).unref());
}

/** bwrap reports a child killed by signal N as exit code 128 + N: give it back as the signal, as without bwrap. */
export function unwrapBwrapExit(exit: ExitInfo): ExitInfo {
  const code = exit.exitCode;
  if (code === null || code <= 128 || exit.signal) return exit;
  const signal = Object.entries(osConstants.signals).find(([, n]) => n === code - 128)?.[0] as
    NodeJS.Signals | undefined;
  return signal ? { ...exit, exitCode: null, signal } : exit;
}

/** Makes the Extension and starts its first session; a failed start frees everything and throws ExtensionLoadError. */
export async function launchExtension(input: LaunchExtensionInput): Promise<Extension> {
  const extension = new Extension({
    name: input.name,
    environment: input.environment,
    sandbox: input.sandbox,
    logger: input.logger,
    callTimeoutMs: input.callTimeoutMs,
    stopGraceMs: input.stopGraceMs,
    onFinished: input.onFinished,
    restart: input.restart,
    worker: input.worker,
    startSession: (hooks, signal) => startSession(input, hooks, signal),
  });
  await extension.start(input.signal);
  return extension;
}

/** One guest process through its handshake. On failure the process is gone and the error is an ExtensionLoadError. */
export async function startSession(
  input: LaunchExtensionInput,
  hooks: SessionHooks,
  signal: AbortSignal | undefined,
): Promise<GuestSession> {
  const { name, logger } = input;
  // Over TCP the guest dials the listener with a one-time token (src/remote/); else fd 3 is its socket.
  const listener = input.transport === "tcp" ? await input.listener!() : undefined;
  const pending: PendingConnection | undefined = listener?.expect(name);
  // The heartbeat over TCP: a second authenticated connection, its own token (fd 5's job).
  const beat: PendingConnection | undefined =
    input.health === undefined ? undefined : listener?.expect(`${name} (heartbeat)`);
  const built = buildLaunchCommand({
    pythonPath: input.pythonPath,
    venv: input.venv,
    modulePath: input.modulePath,
    sandbox: input.sandboxLaunch,
    env: buildCleanEnv({
      hostEnv: process.env,
      venvPath: input.environment.venvPath,
      home: input.privateDirs.home,
      tmpdir: input.privateDirs.tmpdir,
      extra: {
        ...withoutDialEnv(input.env),
        ...pending?.env,
        ...(pending ? { [CUDA_REFUSE_ENV]: "1" } : {}),
        ...(beat ? { [HEARTBEAT_TOKEN_ENV]: beat.token } : {}),
      },
      cudaIpc: pending ? false : input.cudaIpc,
    }),
    limits: input.resourceLimits,
  });
  const command = pending ? tcpLaunch(built, input.sandboxLaunch.backend) : built;

  let pythonVersion = ""; // from hello, reported on the extension once it is ready
  let started = false;
  let settleHandshake: ((error: Error | undefined, ready?: ReadyMessage) => void) | undefined;
  const handshake = new Promise<ReadyMessage>((resolve, reject) => {
    settleHandshake = (error, ready) => (error ? reject(error) : resolve(ready!));
  });
  const failStart = (error: Error) => settleHandshake?.(error);

  let disconnectTimer: NodeJS.Timeout | undefined;
  const limits = input.limits ?? resolveLimits();
  // let, not const: the exit handler may run before the assignment below, and must then see undefined.
  // eslint-disable-next-line prefer-const
  let enforcement: Enforcement | undefined;
  // No fd channel over TCP: tensors and bytes travel by value.
  const tensors = new TensorLink(
    pending ? "copy" : input.tensorTransport,
    name,
    limits,
    input.bytesMemfdThreshold,
    pending ? CUDA_OVER_TCP : undefined,
  );
  // Lines and events past the extension's budget are dropped here, before they are forwarded or emitted.
  const gate = outputGate(input.output ?? DEFAULT_OUTPUT_LIMITS, name, logger, (report) => hooks.dropped(report));
  const guest = new GuestProcess(
    command,
    {
      onStdout: (line) => {
        if (!gate.admit("stdout", Buffer.byteLength(line) + 1)) return;
        input.forwardOutput?.("stdout", line);
        hooks.stdout(line);
      },
      onStderr: (line) => {
        if (!gate.admit("stderr", Buffer.byteLength(line) + 1)) return;
        input.forwardOutput?.("stderr", line);
        hooks.stderr(line);
      },
      onExit: (raw) => {
        const exit = input.sandboxLaunch.backend.startsWith("bwrap") ? unwrapBwrapExit(raw) : raw;
        tensors.ended();
        gate.close();
        clearTimeout(disconnectTimer); // a dead extension keeps no timer of the host
        // A signal that is the kernel's word for a limit (SIGXCPU, an OOM kill in its cgroup) is reported as that limit.
        const limitError = enforcement?.exitError(exit);
        enforcement?.ended();
        health?.stop();
        if (limitError && started) hooks.failure(limitError);
        failStart(limitError ?? new ExtensionCrashedError(name, exit));
        hooks.exit(exit);
      },
    },
    {
      fdChannel: tensors.childFd,
      maxLineChars: limits.maxLineChars,
      heartbeat: input.health !== undefined && !pending,
      gate,
      channel: !pending,
    },
  );
  tensors.spawned(guest.pid);
  let health: HealthMonitor | undefined;
  // A failure found after the start (protocol error, hung guest, a limit) ends this session: the Extension decides what next.
  const failLater = (error: Error) => (started ? hooks.failure(error) : failStart(error));
  // From the spawn on: what the import does counts too.
  enforcement =
    guest.pid === undefined
      ? undefined
      : enforceLimits({
          name,
          pid: guest.pid,
          backend: input.sandboxLaunch.backend,
          limits: input.resourceLimits,
          logger,
          folders: [input.privateDirs.home, input.privateDirs.tmpdir],
          onExceeded: (error) => {
            logger.warn(`[${name}] ${error.message}`);
            failLater(error);
          },
        });

  const timer = setTimeout(
    () =>
      failStart(
        new ExtensionLoadError(
          name,
          `no answer to the handshake within ${input.startTimeoutMs} ms (the import may hang)`,
        ),
      ),
    input.startTimeoutMs,
  );
  const onAbort = () => failStart(new CallAbortedError(`loading "${name}" was aborted`, { cause: signal?.reason }));
  signal?.addEventListener("abort", onAbort, { once: true });
  if (signal?.aborted) onAbort();
  // eslint-disable-next-line prefer-const -- the handlers below may run before it is made (a guest that exits first)
  let peer: RpcPeer | undefined;
  const fail = async (error: unknown): Promise<never> => {
    const cause = error as Error;
    const failure =
      cause instanceof ExtensionLoadError ? cause : new ExtensionLoadError(name, cause.message, { cause });
    pending?.cancel(failure);
    beat?.cancel(failure);
    void beat?.accepted.then(
      (socket) => socket.destroy(),
      () => undefined,
    );
    peer?.close(failure);
    guest.kill();
    await guest.exited;
    throw failure;
  };
  let channel: Duplex;
  try {
    channel = pending ? await acceptOrFail(pending, handshake) : guest.channel!;
  } catch (error) {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
    return fail(error);
  }
  peer = new RpcPeer(channel, {
    resolveTarget: input.resolveService,
    // Host services and callbacks learn which extension called them (callingExtension()).
    caller: name,
    kinds: [tensors.codec()],
    fdChannel: tensors.channel,
    bytesFd: tensors.bytesFd,
    limits,
    admitEvent: (_event, bytes) => gate.admit("events", bytes),
    // The socket often closes before the exit is reported; the exit handler closes the peer with the
    // real reason. A process that closed its socket but lives on is killed.
    onDisconnect: () => {
      disconnectTimer = setTimeout(() => {
        if (guest.hasExited) return;
        logger.warn(`[${name}] closed its RPC socket but kept running; killing it`);
        guest.kill();
      }, DISCONNECT_GRACE_MS).unref();
    },
    onProtocolError: (error) => {
      logger.warn(`[${name}] protocol error, stopping the extension: ${error.message}`);
      failLater(error);
    },
    // Checked field by field (lifecycle/handshake.ts): a malformed or late one is a ProtocolError, never a throw.
    onControl: guestControl(name, {
      event: (event, payload) => hooks.event(event, payload),
      init: (step) => {
        peer!.send(
          buildInit({
            name,
            modulePath: input.modulePath,
            extensionClass: input.extensionClass,
            tensors: tensors.init,
            limits,
            services: input.serviceNames(),
            inferenceMode: input.inferenceMode,
            idlePollMicros: input.idlePollMicros,
          }),
        );
        if (step.batch) peer!.enableBatches();
        pythonVersion = step.python;
        // Without a PID namespace the pid it reports is a host pid: ext.pid names the Python process, not its supervisor.
        if (!input.sandboxLaunch.backend.startsWith("bwrap")) guest.adoptPythonPid(step.pid);
      },
      ready: (step) =>
        settleHandshake?.(undefined, {
          k: "ready",
          methods: step.methods,
          extensionClass: step.extensionClass,
          streams: step.streams,
        }),
      fail: failLater,
    }),
  });

  // The listener paused the connection with the guest's first frame possibly buffered: read on, now that the peer listens.
  channel.resume();
  try {
    const ready = await handshake;
    // The guest dialled both before it confined itself: its heartbeat connection came before its hello.
    const beatSocket = beat
      ? await Promise.race([beat.accepted, timeout(1000, `extension "${name}" did not open its heartbeat connection`)])
      : undefined;
    started = true;
    // Pinged only once ready: the import may hold the event loop as long as startTimeoutMs allows.
    if (input.health && guest.heartbeat) health = new HealthMonitor(guest.heartbeat, name, input.health, failLater);
    if (input.health && beatSocket) {
      health = new HealthMonitor(beatSocket, name, input.health, failLater);
      beatSocket.resume();
    }
    return {
      process: guest,
      peer,
      info: {
        methods: ready.methods,
        extensionClass: ready.extensionClass,
        pythonVersion,
        streams: ready.streams ?? [],
      },
      stopHealth: () => health?.stop(),
    };
  } catch (error) {
    return fail(error);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }
}
