// Calls in flight both ways: ours awaiting an answer (PendingCall), and theirs running here (IncomingCalls).

import { runAsCaller } from "../caller.js";
import { CallAbortedError, RemoteError } from "../errors.js";
import type { Codec } from "./codec.js";
import type { CallableTables } from "./callables.js";
import { encodeFrame } from "./framing.js";
import { encodeMessage, type FrameChunks } from "./messages.js";
import type { CallMessage, WireError } from "./protocol.js";
import { plainValueJson } from "./plain-json.js";
import type { PlainMessage } from "./plain-runs.js";
import { serviceStreamSource } from "./service-stream.js";
import type { OutgoingStreams } from "./stream-producer.js";
import type { AnyFunction } from "./value-kind.js";

/** What incoming calls need from their peer. */
export interface IncomingContext {
  readonly codec: Codec;
  readonly callables: CallableTables;
  readonly resolveTarget: ((target: string) => object | undefined) | undefined;
  /** Who the other side is (an extension's name): host functions learn it through callingExtension(). */
  readonly caller?: string;
  /** Writes frame chunks (or a plain message); does nothing once the peer is closed. */
  write(chunks: FrameChunks | PlainMessage): void;
  /** Runs the stream calls made on us (on iterables we sent as `$iter`). */
  readonly streams: OutgoingStreams;
}

/**
 * Runs incoming calls. Async ones are tracked by id until they settle; a `cancel` forgets the id, so the
 * eventual reply is dropped (a host function cannot in general be interrupted).
 */
export class IncomingCalls {
  private readonly running = new Set<number>();

  constructor(private readonly context: IncomingContext) {}

  get size(): number {
    return this.running.size;
  }

  cancel(id: number): void {
    this.running.delete(id);
    this.context.streams.cancel(id);
  }

  clear(): void {
    this.running.clear();
  }

  /**
   * Runs call `msg` with its decoded `args` and sends the result or error. Keyword arguments `kw`, when the caller
   * passed any, reach the function as one extra trailing argument: a plain object (the JavaScript options idiom).
   */
  invoke(msg: CallMessage, args: unknown[], kw?: Record<string, unknown>): void {
    const id = msg.id;
    if (msg.stream !== undefined) return this.openStream(msg, msg.stream, args, kw);
    let result: unknown;
    try {
      const { self, fn } =
        msg.fn !== undefined
          ? this.exported(msg.fn)
          : serviceMethod(this.context.resolveTarget, msg.target, msg.method);
      if (kw !== undefined && hasOwnNames(kw)) args.push(kw);
      result = this.asCaller(() => fn.apply(self, args));
    } catch (err) {
      return this.replyError(id, err, false);
    }
    if (typeof (result as PromiseLike<unknown> | null)?.then === "function") {
      this.running.add(id);
      (result as PromiseLike<unknown>).then(
        (value) => this.replyResult(id, value, true),
        (err: unknown) => this.replyError(id, err, true),
      );
    } else {
      this.replyResult(id, result, false);
    }
  }

  /** A stream call: on an iterable we sent as `$iter` (once each), or on a granted service's method; never on a function. */
  private openStream(msg: CallMessage, window: number, args: unknown[], kw: Record<string, unknown> | undefined): void {
    if (msg.fn === undefined) return this.openServiceStream(msg, window, args, kw);
    const source = this.context.callables.takeStream(msg.fn);
    if (source !== undefined) return this.context.streams.start(msg.id, source, window);
    const reason = `no stream with id ${msg.fn} (streamed already, released, or never sent)`;
    this.replyError(msg.id, new WireRefusal("LookupError", reason), false);
  }

  /**
   * A stream call on `target.method` (docs/streams.md, Streams from host services): the method runs as the caller's,
   * and the items come from the async iterable or generator it returns; anything else ends the stream with a TypeError.
   */
  private openServiceStream(
    msg: CallMessage,
    window: number,
    args: unknown[],
    kw: Record<string, unknown> | undefined,
  ): void {
    let found: { self: object; fn: AnyFunction };
    try {
      found = serviceMethod(this.context.resolveTarget, msg.target, msg.method);
    } catch (err) {
      return this.replyError(msg.id, err, false);
    }
    if (kw !== undefined && hasOwnNames(kw)) args.push(kw);
    const { self, fn } = found;
    const what = `${msg.target}.${msg.method}`;
    const start = () =>
      this.context.streams.start(
        msg.id,
        serviceStreamSource(() => fn.apply(self, args), what),
        window,
      );
    this.asCaller(start); // the producer starts as the caller's, so the method and every step of its iterator see it
  }

  /** The function we sent as `$fn` number `fnId`, called with no `this`; a LookupError once released or never sent. */
  private exported(fnId: number): { self: undefined; fn: AnyFunction } {
    const fn = this.context.callables.lookup(fnId);
    if (fn === undefined) throw new WireRefusal("LookupError", `no callable with id ${fnId} (released, or never sent)`);
    return { self: undefined, fn };
  }

  /** Runs `work` as the calling extension's (callingExtension() names it), when this peer knows who that is. */
  private asCaller<T>(work: () => T): T {
    const caller = this.context.caller;
    return caller === undefined ? work() : runAsCaller(caller, work);
  }

  /** Sends the `result` of call `id`; an async call's reply is dropped when it was cancelled meanwhile. */
  private replyResult(id: number, value: unknown, async: boolean): void {
    if (async && !this.running.delete(id)) return;
    const plain = plainValueJson(value);
    if (plain !== undefined) return this.context.write({ id, keys: undefined, json: plain });
    let chunks: FrameChunks;
    try {
      chunks = encodeMessage(this.context.codec, this.context.callables, { k: "result", id }, "value", value, "result");
    } catch (err) {
      return this.replyError(id, err, false);
    }
    this.context.write(chunks);
  }

  /** Sends the `error` of call `id`, under the same rule. */
  private replyError(id: number, err: unknown, async: boolean): void {
    if (async && !this.running.delete(id)) return;
    this.context.write(encodeFrame({ k: "error", id, error: toWireError(err) }));
  }
}

/** A refusal sent back as a builtin Python error type (see docs/protocol.md, Errors). */
export class WireRefusal extends Error {
  constructor(
    readonly type: "LookupError" | "AttributeError" | "TypeError",
    message: string,
  ) {
    super(message);
  }
}

/** The service `target` and its public method `name`, or a WireRefusal (LookupError, AttributeError) saying which is missing. */
export function serviceMethod(
  resolveTarget: ((target: string) => object | undefined) | undefined,
  target: string | undefined,
  name: string | undefined,
): { self: object; fn: AnyFunction } {
  const self = target === undefined ? undefined : resolveTarget?.(target);
  if (self === null || (typeof self !== "object" && typeof self !== "function"))
    throw new WireRefusal("LookupError", `no service named ${JSON.stringify(target)}`);
  const fn = name === undefined ? undefined : lookupMethod(self, name);
  if (fn === undefined)
    throw new WireRefusal("AttributeError", `${JSON.stringify(target)} has no public method ${JSON.stringify(name)}`);
  return { self, fn };
}

/** Members every object inherits; never callable remotely, even when a class overrides them. */
const INHERITED = new Set<string>(Object.getOwnPropertyNames(Object.prototype));

/**
 * The public method `name` of `target`: an own or inherited data property holding a function, whose name
 * does not start with "_", is not "constructor", and is not an Object.prototype member name. The search
 * stops at Object.prototype and Function.prototype.
 * Getters are never invoked.
 */
export function lookupMethod(target: object, name: string): AnyFunction | undefined {
  if (name === "" || name.charCodeAt(0) === 95 /* _ */ || name === "constructor" || INHERITED.has(name))
    return undefined;
  let holder: object | null = target;
  while (holder !== null && holder !== Object.prototype && holder !== Function.prototype) {
    const desc = Object.getOwnPropertyDescriptor(holder, name);
    if (desc !== undefined) return typeof desc.value === "function" ? desc.value : undefined;
    holder = Object.getPrototypeOf(holder) as object | null;
  }
  return undefined;
}

/** Turns anything thrown by a host function into the wire's error object. */
export function toWireError(err: unknown): WireError {
  if (err instanceof WireRefusal) return { type: err.type, message: err.message };
  if (err instanceof RemoteError) {
    // Forward a Python error with its own type, so the guest raises what was raised.
    const prefix = `${err.remoteType}: `;
    const message = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
    const wire: WireError = { type: err.remoteType, message, traceback: err.stack ?? err.remoteTraceback };
    if (err.remoteModule !== undefined) wire.module = err.remoteModule;
    return wire;
  }
  if (err instanceof Error) {
    const wire: WireError = { type: safeString(err.name) || "Error", message: safeString(err.message) };
    if (typeof err.stack === "string") wire.traceback = err.stack;
    return wire;
  }
  return { type: "Error", message: safeString(err) };
}

function hasOwnNames(kw: Record<string, unknown>): boolean {
  for (const _name in kw) return true;
  return false;
}

function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return "<unprintable value>";
  }
}

/**
 * A call awaiting its `result` or `error`. It is its own abort listener (`handleEvent`) and the timer passes
 * it to a shared callback, so a call costs no closures beyond the promise executor.
 */
export class PendingCall {
  resolve!: (value: unknown) => void;
  reject!: (error: unknown) => void;
  timeoutMs: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private signal: AbortSignal | undefined;

  constructor(
    /** The peer's one handler for a call whose signal fired or whose timeout passed (shared, not a closure per call). */
    readonly abandon: (call: PendingCall, reason: unknown, timedOut: boolean) => void,
    readonly id: number,
    readonly target: string | undefined,
    readonly method: string | undefined,
    readonly fnId: number | undefined,
  ) {}

  /** Arms the timeout and the abort listener. */
  watch(signal: AbortSignal | undefined, timeoutMs: number | undefined): void {
    if (signal !== undefined) {
      this.signal = signal;
      signal.addEventListener("abort", this, { once: true });
    }
    if (timeoutMs !== undefined) {
      this.timeoutMs = timeoutMs;
      this.timer = setTimeout(onTimeout, timeoutMs, this);
    }
  }

  /** Disarms the timeout and abort listener; call once the call settles, whichever way. */
  unwatch(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.signal !== undefined) this.signal.removeEventListener("abort", this);
    this.timer = undefined;
    this.signal = undefined;
  }

  /** AbortSignal listener. */
  handleEvent(): void {
    const reason: unknown = this.signal?.reason;
    this.abandon(this, reason, isTimeoutReason(reason));
  }

  /** "stats.mean" or "callable #3", for messages. */
  describe(): string {
    return this.fnId !== undefined ? `callable #${this.fnId}` : `${this.target}.${this.method}`;
  }
}

function onTimeout(call: PendingCall): void {
  call.abandon(call, undefined, true);
}

/** The rejection of `subject` ("call ext.mean", "stream ext.gen") whose signal fired before it was sent. */
export function abortedBeforeSent(subject: string, reason: unknown): CallAbortedError {
  return new CallAbortedError(`${subject} was aborted before it was sent`, {
    cause: reason,
    timedOut: isTimeoutReason(reason),
  });
}

/** An AbortSignal.timeout() reason counts as a timeout too. */
export function isTimeoutReason(reason: unknown): boolean {
  return typeof reason === "object" && reason !== null && (reason as { name?: unknown }).name === "TimeoutError";
}

/** Validates the per-call options once, with messages that name the option. */
export function checkCallOptions(options: { signal?: AbortSignal; timeoutMs?: number } | undefined): void {
  if (options === undefined) return;
  const { signal, timeoutMs } = options;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError("options.signal must be an AbortSignal");
  }
  if (timeoutMs !== undefined && !(typeof timeoutMs === "number" && timeoutMs > 0 && timeoutMs <= 2 ** 31 - 1)) {
    throw new RangeError(`options.timeoutMs must be a number of milliseconds between 1 and 2^31-1, got ${timeoutMs}`);
  }
}
