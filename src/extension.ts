// One extension as the host application sees it: its lifecycle state machine, calls, proxy, events and output,
// across the guest processes (sessions) that serve it when the restart policy brings it back.

import { EventEmitter } from "node:events";
import type { CallOptions } from "./config/options.js";
import type { Environment } from "./env/builder.js";
import { ExtensionClosedError, ExtensionCrashedError, UnknownMethodError, type ExitInfo } from "./errors.js";
import { ReadyGate } from "./lifecycle/ready-gate.js";
import { nextRestartDelay, restartsInWindow, type RestartPolicy } from "./lifecycle/restart-policy.js";
import type { Logger } from "./logger.js";
import type { GuestSession, SessionHooks } from "./lifecycle/session.js";
import { EXTENSION_TARGET } from "./rpc/protocol.js";
import { failedStream, type StreamOptions } from "./rpc/stream-call.js";
import type { SandboxInfo } from "./sandbox/types.js";
import type { ExtensionEventMap, ExtensionState, UntypedEvents } from "./types/events.js";
import type { Remote, Shape, UntypedApi } from "./types/remote.js";
import { makeRemoteProxy } from "./types/remote-proxy.js";

export type { ExtensionState } from "./types/events.js";

/** Event names the host itself emits on an Extension; a Python event of these names is dropped. */
export const RESERVED_EVENTS = new Set([
  "stdout",
  "stderr",
  "exit",
  "stateChange",
  "dropped",
  "newListener",
  "removeListener",
  "crash",
  "restart",
  "ready",
  "error",
]);

/**
 * A callable view of an extension with no declared API: `ext.proxy.mean(xs)` is `ext.call("mean", [xs])`, and
 * `ext.proxy.mean(xs, kwargs({ axis: 0 }))` calls `mean(xs, axis=0)`. A declared one is `Remote<Api>`.
 */
export type ExtensionProxy = Remote<UntypedApi>;

export interface ExtensionParts {
  name: string;
  environment: Environment;
  sandbox: SandboxInfo;
  logger: Logger;
  callTimeoutMs: number | undefined;
  stopGraceMs: number;
  restart: RestartPolicy | undefined;
  /** Its index in a pool: crash errors name it. Absent for a plain load. */
  worker?: number;
  /** Starts one guest process and waits for its ready (launch-extension.ts). */
  startSession: (hooks: SessionHooks, signal: AbortSignal | undefined) => Promise<GuestSession>;
  /** Runs once the extension is stopped or crashed for good: frees private folders and pins, unregisters it. */
  onFinished: () => Promise<void>;
}

/** One attempt's bookkeeping: what ended it, known before or after its session is adopted. */
interface Attempt {
  session?: GuestSession;
  failure?: Error;
  exit?: ExitInfo;
}

// The host emits names known only at run time (the extension's events): inside, emit takes any name.
// The interface merges with the class below, so it repeats the class's type parameters and `any` here is the point.
/* eslint-disable @typescript-eslint/no-unused-vars, @typescript-eslint/no-explicit-any */
export interface Extension<Api extends Shape = UntypedApi, Events extends Shape = UntypedEvents> {
  emit(eventName: any, ...args: any[]): boolean;
  listenerCount(eventName: any): number;
}
/* eslint-enable @typescript-eslint/no-unused-vars, @typescript-eslint/no-explicit-any */

/**
 * `Api` types `proxy` (`manager.load<Api>()`; see `Remote`), `Events` the payload of each event the extension emits
 * (`{ progress: { done: number } }`); both default to loose types for untyped use.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging -- see the interface above
export class Extension<Api extends Shape = UntypedApi, Events extends Shape = UntypedEvents> extends EventEmitter<
  ExtensionEventMap<Events>
> {
  readonly name: string;
  readonly environment: Environment;
  /** What confines this extension: the backend that ran, the host's restriction model, and whether it fell back. */
  readonly sandbox: Readonly<SandboxInfo>;
  /** Public methods the extension object offers, as reported at (re)start. */
  methods: readonly string[] = [];
  /** Those of `methods` that are Python generators: `proxy` streams them (as `stream()`). */
  streamMethods: readonly string[] = [];
  /** `"module:Class"` of the extension object. */
  extensionClass = "";
  /** The guest's Python version. */
  pythonVersion = "";
  /** How many times the restart policy brought it back. */
  restarts = 0;
  /** The extension's methods as functions; `then`, `toJSON`, `toString`, symbols and other probes stay local. */
  readonly proxy: Remote<Api>;
  private currentState: ExtensionState = "starting";
  private failure: Error | undefined;
  private stopping: Promise<void> | undefined;
  private current: Attempt | undefined;
  private readonly parts: ExtensionParts;
  private readonly gate = new ReadyGate();
  /** When each restart happened (ms since the epoch), for the policy's window. */
  private restartTimes: number[] = [];
  private backoff: { timer: NodeJS.Timeout; wake: () => void } | undefined;
  private restartAbort: AbortController | undefined;
  private restartRun: Promise<void> | undefined;
  /** Crashed for good while its killed process still ran: free its folders when it exits. */
  private finishOnExit = false;
  /** The onFinished run, once it started: stop() of a crashed extension waits for it. */
  private finished: Promise<void> | undefined;

  /** @internal Made by ExtensionManager.load(). */
  constructor(parts: ExtensionParts) {
    super();
    this.parts = parts;
    this.name = parts.name;
    this.environment = parts.environment;
    this.sandbox = Object.freeze({ ...parts.sandbox });
    this.proxy = makeRemoteProxy(
      this.name,
      () => this.methods,
      (method, args) => this.call(method, args),
      {
        streams: () => this.streamMethods,
        stream: (method, args) => this.stream(method, args),
      },
    ) as Remote<Api>;
  }

  get state(): ExtensionState {
    return this.currentState;
  }

  /**
   * The extension's Python process (under bwrap: bwrap's, the sandbox's outer process); undefined from a crash on,
   * until a restart's process is ready. Killing it kills everything the extension started.
   */
  get pid(): number | undefined {
    const attempt = this.current;
    return attempt?.session && !attempt.failure ? attempt.session.process.extensionPid : undefined;
  }

  /**
   * Where an extension placed on a cluster runs (`load({ placement })`): for Ray `{ backend: "ray", nodeId,
   * nodeAddress, jobId, sandbox }`; undefined for a local one, and from a crash on until a restart is ready.
   */
  get placement(): Readonly<Record<string, unknown>> | undefined {
    const attempt = this.current;
    return attempt?.session && !attempt.failure ? attempt.session.process.placement : undefined;
  }

  /** @internal The timeout a call without its own `timeoutMs` gets (the load's `callTimeoutMs`). */
  get defaultCallTimeoutMs(): number | undefined {
    return this.parts.callTimeoutMs;
  }

  /** @internal The process group the host spawned (the guest's supervisor or bwrap leads it). */
  get processGroup(): number | undefined {
    return this.current?.session?.process.pid;
  }

  /**
   * Calls a public method of the extension object. Keyword arguments go in `options.kwargs`, or as a `kwargs()`
   * marker last in `args`: `ext.call("mean", [x], { kwargs: { axis: 0 } })` is `mean(x, axis=0)` in Python.
   * While it restarts, the call waits (restart.queueCalls, bounded by queueTimeoutMs and its own timeout) or rejects.
   */
  call(method: string, args: unknown[] = [], options: CallOptions = {}): Promise<unknown> {
    const timeoutMs = options.timeoutMs ?? this.parts.callTimeoutMs;
    if (this.currentState === "restarting" && this.parts.restart?.queueCalls) {
      return this.callAfterRestart(method, args, options, timeoutMs);
    }
    const session = this.current?.session;
    if (this.currentState !== "ready" || !session) {
      return Promise.reject(
        this.failure ?? new ExtensionClosedError(`extension "${this.name}" is ${this.currentState}`),
      );
    }
    // A name the ready message did not list is refused here: a typo never reaches the extension.
    if (!this.methods.includes(method)) return Promise.reject(new UnknownMethodError(this.name, method, this.methods));
    // The caller's options go as they are unless the default timeout applies: no object per call.
    const callOptions = timeoutMs === options.timeoutMs ? options : { ...options, timeoutMs };
    return session.peer.call(EXTENSION_TARGET, method, args, callOptions);
  }

  /**
   * Calls a generator method and reads what it yields: `for await (const token of ext.stream("generate", [prompt]))`.
   * Python runs at most `options.window` items (default 16) ahead of the loop; leaving the loop, `return()`,
   * `options.signal` or `options.idleTimeoutMs` (default: the call timeout, per item) close the generator. Its error
   * rejects the read after its last item, as a RemoteError; a crash or stop() ends the stream with that error.
   * While it restarts, the stream waits as a call does (restart.queueCalls) for its first read.
   */
  stream(method: string, args: unknown[] = [], options: StreamOptions = {}): AsyncIterableIterator<unknown> {
    const idleTimeoutMs = options.idleTimeoutMs ?? this.parts.callTimeoutMs;
    if (this.currentState === "restarting" && this.parts.restart?.queueCalls)
      return this.streamAfterRestart(method, args, options);
    const session = this.current?.session;
    if (this.currentState !== "ready" || !session) {
      return failedStream(this.failure ?? new ExtensionClosedError(`extension "${this.name}" is ${this.currentState}`));
    }
    if (!this.methods.includes(method)) return failedStream(new UnknownMethodError(this.name, method, this.methods));
    return session.peer.callStream(EXTENSION_TARGET, method, args, { ...options, idleTimeoutMs });
  }

  /** Stops the extension: its `stop` hook runs, then the process exits (SIGTERM, then SIGKILL if it hangs). */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /** @internal The first start, by load(): its failure frees everything and is thrown as is (ExtensionLoadError). */
  async start(signal: AbortSignal | undefined): Promise<void> {
    try {
      await this.startAttempt(signal);
    } catch (error) {
      this.failure ??= error as Error;
      this.currentState = "crashed";
      await (this.finished = this.parts.onFinished());
      throw error;
    }
  }

  /** @internal Marks a failure found by the host (protocol error, limit, hung guest) and kills the process. */
  fail(error: Error): void {
    const attempt = this.current;
    const session = attempt?.session;
    if (!attempt || !session || attempt.failure || this.currentState !== "ready") return;
    attempt.failure = error;
    session.stopHealth();
    session.peer.close(error);
    session.process.kill();
    // A crash from now on: calls made before the exit arrives already wait for the restart (or reject).
    this.crashed(error, session);
  }

  private async startAttempt(signal: AbortSignal | undefined): Promise<void> {
    const attempt: Attempt = {};
    this.current = attempt;
    const hooks: SessionHooks = {
      stdout: (line) => this.emit("stdout", line),
      stderr: (line) => this.emit("stderr", line),
      event: (name, payload) => this.deliverEvent(name, payload),
      dropped: (report) => this.emit("dropped", report),
      exit: (exit) => this.sessionExited(attempt, exit),
      failure: (error) => (this.current === attempt ? this.fail(error) : undefined),
    };
    const session = await this.parts.startSession(hooks, signal);
    attempt.session = session;
    this.methods = Object.freeze([...session.info.methods]);
    this.streamMethods = Object.freeze([...session.info.streams]);
    this.extensionClass = session.info.extensionClass;
    this.pythonVersion = session.info.pythonVersion;
    this.failure = undefined;
    this.setState("ready");
    this.emit("ready");
    this.gate.open();
  }

  private deliverEvent(name: string, payload: unknown): void {
    if (RESERVED_EVENTS.has(name)) {
      this.parts.logger.warn(`[${this.name}] event "${name}" is reserved by the host and was dropped`);
    } else if (this.listenerCount(name) === 0) {
      this.parts.logger.debug(`[${this.name}] event "${name}" has no listener; dropped`);
    } else {
      this.emit(name, payload);
    }
  }

  /** A session's process ended: on its own (a crash), because the host killed it, or because we stopped it. */
  private sessionExited(attempt: Attempt, exit: ExitInfo): void {
    attempt.exit = exit;
    const session = attempt.session;
    if (session && this.current === attempt) {
      session.stopHealth();
      if (this.currentState === "stopping" || this.currentState === "stopped") {
        session.peer.close(new ExtensionClosedError(`extension "${this.name}" was stopped`));
      } else if (this.currentState === "ready" && !attempt.failure) {
        const error = new ExtensionCrashedError(this.name, exit, { worker: this.parts.worker });
        attempt.failure = error;
        // In-flight calls reject with the crash: never replayed, so a side effect happens at most once.
        session.peer.close(error);
        this.crashed(error, session);
      }
    }
    if (this.finishOnExit && this.current === attempt) {
      this.finishOnExit = false;
      this.finished = this.parts.onFinished();
    }
    // An exit during a handshake is reported by startSession itself.
    this.emit("exit", exit);
  }

  /** A crash: restart per policy, or stay crashed for good. */
  private crashed(error: Error, session: GuestSession | undefined): void {
    this.failure = error;
    this.emit("crash", error);
    const policy = this.parts.restart;
    const now = Date.now();
    const delay = policy ? nextRestartDelay(policy, this.restartTimes, now) : undefined;
    if (!policy || delay === undefined) {
      // Debug only: the crash reaches the application as the rejection of its calls and the `crash` event.
      this.parts.logger.debug(error.message);
      this.setState("crashed");
      this.gate.close(error);
      // Its private folders and pins go once the process is gone (a killed one may take up to the SIGKILL delay).
      if (session && !session.process.hasExited) this.finishOnExit = true;
      else this.finished = this.parts.onFinished();
      return;
    }
    this.restartTimes = [...restartsInWindow(this.restartTimes, policy.windowMs, now), now];
    this.parts.logger.warn(`[${this.name}] restarting in ${delay} ms after: ${error.message}`);
    this.setState("restarting");
    this.restartRun = this.restartAfter(delay, session);
  }

  /** After the backoff and once the old process is gone (it held the same private folders), a new session. */
  private async restartAfter(delayMs: number, previous: GuestSession | undefined): Promise<void> {
    await new Promise<void>((wake) => (this.backoff = { timer: setTimeout(wake, delayMs), wake }));
    this.backoff = undefined;
    await previous?.process.exited;
    if (this.currentState !== "restarting") return; // stopped during the backoff
    this.restarts += 1;
    this.emit("restart", { attempt: this.restarts, cause: this.failure });
    this.restartAbort = new AbortController();
    try {
      await this.startAttempt(this.restartAbort.signal);
    } catch (error) {
      if (this.currentState !== "restarting") return; // stopped during the start
      this.crashed(error as Error, undefined);
    } finally {
      this.restartAbort = undefined;
    }
  }

  /** Waits for the restart (bounded), then calls with what is left of the call's own timeout. */
  private async callAfterRestart(
    method: string,
    args: unknown[],
    options: CallOptions,
    timeoutMs: number | undefined,
  ): Promise<unknown> {
    const began = performance.now();
    const queueMs = Math.min(this.parts.restart!.queueTimeoutMs, timeoutMs ?? Infinity);
    await this.gate.wait(queueMs, options.signal, `call "${method}"`, this.failure);
    const left = timeoutMs === undefined ? undefined : Math.max(1, timeoutMs - (performance.now() - began));
    return this.call(method, args, { ...options, timeoutMs: left });
  }

  /** A stream made while restarting: its first read waits for the restart (as a queued call does), then streams. */
  private async *streamAfterRestart(
    method: string,
    args: unknown[],
    options: StreamOptions,
  ): AsyncIterableIterator<unknown> {
    const queueMs = Math.min(
      this.parts.restart!.queueTimeoutMs,
      options.idleTimeoutMs ?? this.parts.callTimeoutMs ?? Infinity,
    );
    await this.gate.wait(queueMs, options.signal, `stream "${method}"`, this.failure);
    yield* this.stream(method, args, options);
  }

  private async shutdown(): Promise<void> {
    if (this.currentState === "stopped" || this.currentState === "crashed") {
      // A crash the host declared (hung, protocol error) may still be killing its process: stop returns once it is gone.
      await this.current?.session?.process.exited;
      await this.finished;
      return;
    }
    const wasRestarting = this.currentState === "restarting";
    this.setState("stopping");
    const closed = new ExtensionClosedError(`extension "${this.name}" was stopped`);
    if (wasRestarting) {
      // During the backoff: no process. During a restart's handshake: abort it, which kills that process.
      if (this.backoff) {
        clearTimeout(this.backoff.timer);
        this.backoff.wake();
      }
      this.restartAbort?.abort(closed);
      await this.restartRun;
    } else {
      const session = this.current?.session;
      if (session && !session.process.hasExited) {
        session.stopHealth();
        try {
          session.peer.send({ k: "shutdown" });
        } catch {
          // The socket is already gone; the signals below still end the process.
        }
        await session.process.terminate(this.parts.stopGraceMs);
      }
      session?.peer.close(closed);
    }
    this.failure = closed;
    this.setState("stopped");
    this.gate.close(closed);
    await (this.finished = this.parts.onFinished());
  }

  private setState(state: ExtensionState): void {
    this.currentState = state;
    this.emit("stateChange", state);
  }
}
