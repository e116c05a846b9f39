// N processes of one extension on one venv as one callable object: least-busy dispatch, sticky keys, events from
// every worker tagged with its index, a crash confined to its worker's calls, each worker restarted per its policy.

import { EventEmitter } from "node:events";
import type { Environment } from "../env/builder.js";
import { RESERVED_EVENTS, type Extension } from "../extension.js";
import type { Logger } from "../logger.js";
import type { SandboxInfo } from "../sandbox/types.js";
import type { ExtensionEventMap, ExtensionState, UntypedEvents } from "../types/events.js";
import type { Remote, Shape, UntypedApi } from "../types/remote.js";
import { makeRemoteProxy } from "../types/remote-proxy.js";
import { ExtensionClosedError } from "../errors.js";
import type { CallOptions } from "../config/options.js";
import { abortedBeforeSent, checkCallOptions } from "../rpc/peer-calls.js";
import { failedStream, onceDone, type StreamOptions } from "../rpc/stream-call.js";
import { checkStickyKey, type PoolCallOptions } from "./options.js";
import { WaitingCalls } from "./waiting-calls.js";

/** Options of `pool.stream()`: a stream's, and the sticky key of `PoolCallOptions`. */
export type PoolStreamOptions = StreamOptions & Pick<PoolCallOptions, "sticky">;
import { pickWorker, poolState } from "./pick.js";

/** Every event of a pool: the worker's own arguments, then the index of the worker that emitted it. */
export type PoolEventMap<Events> = {
  [K in keyof ExtensionEventMap<Events>]: [...ExtensionEventMap<Events>[K], worker: number];
};

/** One worker as the application sees it: read-only, live. */
export interface PoolWorker {
  readonly index: number;
  /** Its Python process (as `Extension.pid`); undefined while it restarts or after a final crash. */
  readonly pid: number | undefined;
  readonly state: ExtensionState;
  /** Calls the pool sent it that have not settled. */
  readonly inFlight: number;
  readonly restarts: number;
}

export interface PoolParts {
  name: string;
  workers: number;
  /** The most calls one worker is sent at a time (PoolOptions.maxInFlight); undefined: no limit. */
  maxInFlight?: number;
  logger: Logger;
  /** Starts worker `index`; `onFinished` runs once it is stopped or crashed for good. */
  launch: (index: number, onFinished: () => void) => Promise<Extension>;
  /** Runs once every worker is finished. */
  onFinished: () => void;
}

/** Host events forwarded from every worker from the start; an extension's own events are forwarded once listened to. */
const HOST_EVENTS = ["stdout", "stderr", "exit", "stateChange", "dropped", "crash", "restart", "ready"] as const;

export class ExtensionPool<Api extends Shape = UntypedApi, Events extends Shape = UntypedEvents> extends EventEmitter<
  PoolEventMap<Events>
> {
  readonly name: string;
  readonly environment: Environment;
  readonly sandbox: Readonly<SandboxInfo>;
  /** The workers in index order (`pool.workers[i].pid`). */
  readonly workers: readonly PoolWorker[];
  /** The extension's methods as functions, each call to the least-busy worker (see `Extension.proxy`). */
  readonly proxy: Remote<Api>;
  private readonly members: readonly Extension[];
  private readonly inFlight: number[];
  private readonly sticky = new Map<string, number>();
  /** Calls waiting on the host for a worker with room (only with maxInFlight). */
  private readonly waiting = new WaitingCalls();
  private readonly forwarded = new Set<string>();
  private cursor = 0;
  private stopping: Promise<void> | undefined;

  /** @internal Made by startPool(), with every worker ready. */
  constructor(
    name: string,
    members: readonly Extension[],
    private readonly finished: Promise<void>,
    private readonly maxInFlight?: number,
  ) {
    super();
    this.name = name;
    this.members = members;
    this.environment = members[0]!.environment;
    this.sandbox = members[0]!.sandbox;
    this.inFlight = members.map(() => 0);
    this.workers = Object.freeze(members.map((member, index) => this.view(member, index)));
    this.proxy = makeRemoteProxy(
      name,
      () => this.methods,
      (method, args) => this.call(method, args),
      {
        streams: () => (this.members.find((m) => m.state === "ready") ?? this.members[0]!).streamMethods,
        stream: (method, args) => this.stream(method, args),
      },
    ) as Remote<Api>;
    members.forEach((member, index) => {
      for (const event of HOST_EVENTS)
        member.on(event, (...args: unknown[]) => this.untyped.emit(event, ...args, index));
      // A crash ends the process that held a sticky key's state: the key is bound anew at its next call.
      member.on("crash", () => this.unstick(index));
      // A worker back from a restart has room: waiting calls go to it.
      member.on("stateChange", () => this.admitWaiting());
    });
    // An extension event reaches a worker's listeners only: forward each name once the pool is listened to for it.
    this.untyped.on("newListener", (event: string | symbol) => {
      if (typeof event !== "string" || RESERVED_EVENTS.has(event) || this.forwarded.has(event)) return;
      this.forwarded.add(event);
      members.forEach((member, index) =>
        member.on(event, (payload: unknown) => this.untyped.emit(event, payload, index)),
      );
    });
  }

  /** `ready` while any worker is; `restarting` while none is but one comes back; then `crashed` or `stopped`. */
  get state(): ExtensionState {
    if (this.stopping)
      return this.members.every((m) => m.state === "stopped" || m.state === "crashed") ? "stopped" : "stopping";
    return poolState(this.members.map((m) => m.state));
  }

  /** Calls waiting on the host for a worker with room (`maxInFlight`). */
  get queued(): number {
    return this.waiting.size;
  }

  /** The methods of the extension, as its ready workers report them. */
  get methods(): readonly string[] {
    return (this.members.find((m) => m.state === "ready") ?? this.members[0]!).methods;
  }

  /**
   * Calls a method on the least-busy ready worker (ties in turn), or with `sticky` on the worker that key is bound to.
   * A worker's crash rejects its calls only (ExtensionCrashedError with `worker`); the others go on. With
   * `maxInFlight`, a call that finds every ready worker full waits here, in order, for the first with room.
   */
  call(method: string, args: unknown[] = [], options: PoolCallOptions = {}): Promise<unknown> {
    let key: string | undefined;
    try {
      key = checkStickyKey(options.sticky);
    } catch (error) {
      return Promise.reject(error);
    }
    const { sticky: _sticky, ...callOptions } = options;
    if (key === undefined && this.mustWait()) return this.wait(method, args, callOptions);
    return this.send(this.choose(key), method, args, callOptions);
  }

  /** Sends a call to worker `index`, counted in its `inFlight` until it settles; a settled call makes room. */
  private send(index: number, method: string, args: unknown[], options: CallOptions): Promise<unknown> {
    this.inFlight[index]! += 1;
    return this.members[index]!.call(method, args, options).finally(() => {
      this.inFlight[index]! -= 1;
      this.admitWaiting();
    });
  }

  /** Every ready worker has maxInFlight calls, or calls wait already (a new one goes behind them). */
  private mustWait(): boolean {
    return this.maxInFlight !== undefined && this.stopping === undefined && (this.waiting.size > 0 || !this.hasRoom());
  }

  /**
   * A ready worker has fewer than maxInFlight calls; or none is ready, and then a call goes to a worker as without
   * the limit (a restarting one's policy queues or rejects it; a crashed one's rejects it).
   */
  private hasRoom(): boolean {
    let anyReady = false;
    for (let i = 0; i < this.members.length; i++) {
      if (this.members[i]!.state !== "ready") continue;
      if (this.inFlight[i]! < this.maxInFlight!) return true;
      anyReady = true;
    }
    return !anyReady;
  }

  /** Queues a call until a worker has room; its timeout (its own or the workers' default) counts from now. */
  private wait(method: string, args: unknown[], options: CallOptions): Promise<unknown> {
    try {
      checkCallOptions(options);
    } catch (error) {
      return Promise.reject(error);
    }
    if (options.signal?.aborted) return Promise.reject(abortedBeforeSent(`call "${method}"`, options.signal.reason));
    const timeoutMs = options.timeoutMs ?? this.members[0]!.defaultCallTimeoutMs;
    const deadline = timeoutMs === undefined ? undefined : performance.now() + timeoutMs;
    return new Promise((resolve, reject) =>
      this.waiting.add({ method, args, options, resolve, reject, timeoutMs, deadline }),
    );
  }

  /** Sends waiting calls, oldest first, while a worker has room; each with what is left of its timeout. */
  private admitWaiting(): void {
    while (this.waiting.size > 0 && this.hasRoom()) {
      const call = this.waiting.take()!;
      const options =
        call.deadline === undefined
          ? call.options
          : { ...call.options, timeoutMs: Math.max(1, Math.ceil(call.deadline - performance.now())) };
      this.send(this.choose(undefined), call.method, call.args, options).then(call.resolve, call.reject);
    }
  }

  /**
   * Streams a generator method (as `Extension.stream`) from the least-busy worker, or the sticky key's; the whole
   * stream stays on that worker and counts as one call in its `inFlight` until it ends or is left.
   */
  stream(method: string, args: unknown[] = [], options: PoolStreamOptions = {}): AsyncIterableIterator<unknown> {
    let key: string | undefined;
    try {
      key = checkStickyKey(options.sticky);
    } catch (error) {
      return failedStream(error);
    }
    const index = this.choose(key);
    const { sticky: _sticky, ...streamOptions } = options;
    this.inFlight[index]! += 1;
    return onceDone(this.members[index]!.stream(method, args, streamOptions), () => {
      this.inFlight[index]! -= 1;
    });
  }

  /** Forgets a sticky key: its next call goes to the least-busy worker. */
  release(key: string): boolean {
    return this.sticky.delete(key);
  }

  /** Stops every worker (each as `Extension.stop()`). Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.sticky.clear();
      this.waiting.rejectAll(new ExtensionClosedError(`pool "${this.name}" is stopping`));
      await Promise.allSettled(this.members.map((member) => member.stop()));
      await this.finished;
    })();
    return this.stopping;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /** @internal The workers' Extension objects, for the manager's kill at host exit. */
  extensions(): readonly Extension[] {
    return this.members;
  }

  /** The pool as a plain emitter: it re-emits names known only at run time (the extension's events). */
  private get untyped(): EventEmitter {
    return this as EventEmitter;
  }

  /** The worker for a call: the key's if bound and ready, else the least busy (and the key bound to it). */
  private choose(key: string | undefined): number {
    const bound = key === undefined ? undefined : this.sticky.get(key);
    if (bound !== undefined && this.members[bound]!.state === "ready") return bound;
    const loads = this.members.map((m, i) => ({ state: m.state, inFlight: this.inFlight[i]! }));
    const picked = pickWorker(loads, this.cursor);
    // None ready nor restarting: any worker's call rejects with its own reason (crashed, stopped).
    if (!picked) return bound ?? 0;
    this.cursor = picked.cursor;
    if (key !== undefined && !this.stopping) this.sticky.set(key, picked.index);
    return picked.index;
  }

  private unstick(index: number): void {
    for (const [key, bound] of this.sticky) if (bound === index) this.sticky.delete(key);
  }

  private view(member: Extension, index: number): PoolWorker {
    const inFlight = this.inFlight;
    return Object.freeze({
      index,
      get pid() {
        return member.pid;
      },
      get state() {
        return member.state;
      },
      get inFlight() {
        return inFlight[index]!;
      },
      get restarts() {
        return member.restarts;
      },
    });
  }
}

/** Starts every worker at once; if one fails, stops the others and throws its error (ExtensionLoadError). */
export async function startPool<Api extends Shape, Events extends Shape>(
  parts: PoolParts,
): Promise<ExtensionPool<Api, Events>> {
  let left = parts.workers;
  let allFinished!: () => void;
  const finished = new Promise<void>((resolve) => (allFinished = resolve));
  const onFinished = () => {
    left -= 1;
    if (left === 0) {
      parts.onFinished();
      allFinished();
    }
  };
  const started = await Promise.allSettled(
    Array.from({ length: parts.workers }, (_, i) => parts.launch(i, onFinished)),
  );
  const failed = started.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (failed) {
    await Promise.allSettled(started.map((s) => (s.status === "fulfilled" ? s.value.stop() : undefined)));
    throw failed.reason;
  }
  parts.logger.info(`[${parts.name}] pool of ${parts.workers} workers ready`);
  return new ExtensionPool<Api, Events>(
    parts.name,
    started.map((s) => (s as PromiseFulfilledResult<Extension>).value),
    finished,
    parts.maxInFlight,
  );
}
