// The symmetric RPC peer over one byte stream: calls both ways, callables, cancel, release and close.

import type { Duplex } from "node:stream";
import { CallAbortedError, ExtensionClosedError, ProtocolError, RemoteError } from "../errors.js";
import { withPool, type BytesFd } from "./bytes-fd.js";
import { CallableTables } from "./callables.js";
import { Codec, MAX_DEPTH } from "./codec.js";
import type { FdChannel } from "./fd-channel.js";
import { encodeFrame, FrameDecoder, type Frame } from "./framing.js";
import { takeKwargs } from "./kwargs.js";
import { DEFAULT_LIMITS, nestsDeeperThan, type ProtocolLimits } from "./limits.js";
import { LentReturns } from "./lent-returns.js";
import { encodeMessage, parseMessage, type FrameChunks } from "./messages.js";
import { Outbox } from "./outbox.js";
import { abortedBeforeSent, checkCallOptions, IncomingCalls, PendingCall } from "./peer-calls.js";
import { PendingTable } from "./pending-table.js";
import { loneResult } from "./lone-result.js";
import { callKeysJson, plainListJson } from "./plain-json.js";
import type { PlainMessage } from "./plain-runs.js";
import type {
  BatchMessage,
  CallsMessage,
  ControlMessage,
  Message,
  ReleaseMessage,
  ResultsMessage,
} from "./protocol.js";
import { PeerStreams } from "./peer-streams.js";
import { failedStream, type StreamOptions } from "./stream-call.js";
import type { ValueKind } from "./value-kind.js";

export interface RpcPeerOptions {
  /** The object whose public methods answer calls to `target` (a host service), or undefined. */
  resolveTarget?: (target: string) => object | undefined;
  /** The other side's name (an extension's): incoming calls run with it as callingExtension(). */
  caller?: string;
  /** Receives hello, init, ready, fatal, shutdown and event messages. */
  onControl?: (message: ControlMessage) => void;
  /** Told when the other side broke the protocol; the peer has already closed with this error. */
  onProtocolError?: (error: ProtocolError) => void;
  /**
   * When set, the end or failure of the stream is reported here instead of closing the peer at once, so
   * the owner can close with a better cause (e.g. an ExtensionCrashedError once the exit status is known).
   * The owner must then call `close()`; until it does, pending calls wait and new calls are held (never sent), and
   * all of them reject with the cause the owner closes with.
   */
  onDisconnect?: (error: ExtensionClosedError) => void;
  /** Value kinds beyond the built-in ones (tensors); each owns its `release` fields. */
  kinds?: readonly ValueKind[];
  /**
   * The socket that carries file descriptors beside the stream (tensor segments); the peer closes it when it
   * closes. Without it, a frame that announces fds is a protocol error.
   */
  fdChannel?: FdChannel;
  /** Large bytes cross as sealed memfds on `fdChannel` (bytes-fd.ts); absent: bytes are always attachments. */
  bytesFd?: BytesFd;
  /**
   * Asked for each `event` once decoded (so that the tensors and callables in it are booked and later released):
   * false drops it before the owner sees it (the flood gate), so a flood of events calls no listener.
   */
  admitEvent?: (name: string, frameBytes: number) => boolean;
  /** Largest frame accepted from the other side (default: `limits.maxFrameBytes`, else 256 MiB). */
  maxFrameBytes?: number;
  /** What the other side's frames may cost (limits.ts); missing ones take their defaults. */
  limits?: Partial<ProtocolLimits>;
  /** The longest the replies of one read are held for one write while its later frames run (default 1 ms). */
  holdRepliesMs?: number;
}

export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Keyword arguments (Python identifiers as names), sent as the call's `kw`. */
  kwargs?: Record<string, unknown>;
}

export type PeerState = "open" | "closed";

export interface PeerStats {
  /** Our calls awaiting an answer. */
  pending: number;
  /** The other side's calls we are still running. */
  incoming: number;
  /** Our callables the other side may still call. */
  exported: number;
  /** Live proxies of the other side's callables. */
  imported: number;
}

const RPC_KINDS = new Set(["call", "result", "error", "cancel", "release", "event"]);
/** Decoding time one connection may take before its reading yields to the rest of the event loop. */
const TURN_BUDGET_MS = 4;
/** The longest the replies of a read's frames are held back (for one write) while its later frames run. */
const HOLD_REPLIES_MS = 1;

export class RpcPeer {
  private readonly stream: Duplex;
  private readonly options: RpcPeerOptions;
  private readonly codec: Codec;
  private readonly callables: CallableTables;
  private readonly decoder: FrameDecoder;
  private readonly limits: ProtocolLimits;
  private readonly pending = new PendingTable<PendingCall>();
  private readonly incoming: IncomingCalls;
  private readonly streams: PeerStreams;
  private nextCallId = 1;
  private closedWith: Error | undefined;
  /** Set when the stream ended and `onDisconnect` left closing to the owner. */
  private disconnectedWith: ExtensionClosedError | undefined;
  /** Decoding time since reading last yielded (see yieldTurn). */
  private busyMs = 0;
  private yielding = false;
  /** When the replies gathered while this read's frames run began to be held (see releaseHeldReplies). */
  private heldSince = 0;
  /** Gathers the frames of a tick into one write (writeNow). */
  private readonly outbox: Outbox;
  /** The last call's target and method, and their header text (a caller calls the same few methods over and over). */
  private lastTarget: string | undefined;
  private lastMethod: string | undefined;
  private lastFn: number | undefined;
  private lastCallKeys = "";

  constructor(stream: Duplex, options: RpcPeerOptions = {}) {
    this.stream = stream;
    this.options = options;
    this.outbox = new Outbox(stream);
    this.callables = new CallableTables(
      (fnId, args) => this.callFn(fnId, args),
      (fns) => this.writeFrame({ k: "release", fns }),
    );
    this.codec = new Codec({
      kinds: options.kinds,
      callables: this.callables,
      bytesFd: this.withLentReturns(withPool(options.fdChannel && options.bytesFd)),
    });
    for (const kind of options.kinds ?? [])
      kind.bind?.((fields) => this.writeFrame({ k: "release", fns: [], ...fields }));
    this.streams = new PeerStreams({
      codec: this.codec,
      callables: this.callables,
      nextId: () => this.nextCallId++,
      write: (chunks) => this.write(chunks),
      writeFrame: (message) => this.writeFrame(message),
      backlog: () => this.stream.writableLength + this.outbox.pendingBytes,
    });
    this.incoming = new IncomingCalls({
      codec: this.codec,
      callables: this.callables,
      resolveTarget: options.resolveTarget,
      caller: options.caller,
      write: (chunks) => this.write(chunks),
      streams: this.streams.producers,
    });
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    if (options.maxFrameBytes !== undefined) this.limits.maxFrameBytes = options.maxFrameBytes;
    this.decoder = new FrameDecoder(
      (frame) => {
        this.receive(frame);
        this.releaseHeldReplies();
      },
      this.limits,
      this.receiveLoneHeader,
    );
    stream.on("data", this.onData);
    stream.on("end", this.onEnd);
    stream.on("close", this.onEnd);
    stream.on("error", this.onError);
    stream.on("drain", () => this.streams.drained());
  }

  get state(): PeerState {
    return this.closedWith === undefined ? "open" : "closed";
  }

  /** The error pending and later calls were rejected with, once closed. */
  get closeReason(): Error | undefined {
    return this.closedWith;
  }

  get stats(): PeerStats {
    return {
      pending: this.pending.size + this.streams.size,
      incoming: this.incoming.size + this.streams.producers.size,
      exported: this.callables.exportedCount,
      imported: this.callables.importedCount,
    };
  }

  /**
   * Calls `target.method(...args)` on the other side. Keyword arguments come as a `kwargs()` marker last in
   * `args` or as `options.kwargs` (see kwargs.ts).
   */
  call(target: string, method: string, args: unknown[], options?: CallOptions): Promise<unknown> {
    if (typeof target !== "string" || typeof method !== "string") {
      return Promise.reject(new TypeError("call(target, method, args): target and method must be strings"));
    }
    return this.start(target, method, undefined, args, options);
  }

  /** Calls the callable the other side exported as `fnId` (what proxies of remote callables do). */
  callFn(fnId: number, args: unknown[], options?: CallOptions): Promise<unknown> {
    if (!Number.isSafeInteger(fnId) || fnId < 0)
      return Promise.reject(new TypeError(`callFn: bad callable id ${fnId}`));
    return this.start(undefined, undefined, fnId, args, options);
  }

  /**
   * Calls `target.method(...args)` as a stream: the callee (a Python generator) sends items, at most `window` ahead
   * of what the returned iterator has handed out. Breaking out of for-await, `return()`, the signal and the idle
   * timeout cancel it (the generator is closed); its error rejects the read after its last item.
   */
  callStream(
    target: string,
    method: string,
    args: unknown[],
    options: StreamOptions = {},
  ): AsyncIterableIterator<unknown> {
    if (this.closedWith !== undefined) return failedStream(this.closedWith);
    return this.streams.open(target, method, args, options);
  }

  /** The other side reads batch frames (its hello or init said so): plain calls and results of a tick share one. */
  enableBatches(): void {
    this.outbox.batching = true;
  }

  /** Sends a control message (init, shutdown, ...) as is; RPC messages are the peer's own business. */
  send(message: ControlMessage, attachments: readonly Uint8Array[] = []): void {
    if (this.closedWith !== undefined) throw this.closedWith;
    if (RPC_KINDS.has(message.k))
      throw new TypeError(`send() is for control messages; use the peer's methods for "${message.k}"`);
    this.write(encodeFrame({ ...message }, attachments));
  }

  /** Sends a fire-and-forget `event`; the payload is encoded like any value. */
  emit(name: string, payload: unknown): void {
    if (this.closedWith !== undefined) throw this.closedWith;
    if (typeof name !== "string") throw new TypeError("emit(name, payload): name must be a string");
    this.write(encodeMessage(this.codec, this.callables, { k: "event", name }, "payload", payload));
  }

  /**
   * Closes the connection: every pending call rejects with `cause` when it is an Error (else with an
   * ExtensionClosedError whose cause it is), tables are cleared and the stream destroyed. Idempotent: the
   * first cause wins.
   */
  close(cause?: unknown): void {
    if (this.closedWith !== undefined) return;
    const error =
      cause instanceof Error
        ? cause
        : new ExtensionClosedError("the connection was closed", cause === undefined ? undefined : { cause });
    this.closedWith = error;
    const calls = this.pending.takeAll();
    this.incoming.clear();
    this.callables.clear();
    for (const call of calls) {
      call.unwatch();
      call.reject(error);
    }
    this.streams.close(error);
    this.stream.destroy();
    this.options.fdChannel?.close();
    this.codec.bytesFd?.pool?.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  /** A call's signal fired or its timeout passed: rejects locally, then tells the other side. */
  private readonly abandon = (call: PendingCall, reason: unknown, timedOut: boolean): void => {
    if (this.pending.get(call.id) !== call) return;
    this.pending.delete(call.id);
    call.unwatch();
    const message = timedOut
      ? `call ${call.describe()} timed out${reason === undefined ? ` after ${call.timeoutMs} ms` : ""}`
      : `call ${call.describe()} was aborted`;
    const cause = reason ?? new DOMException(`timed out after ${call.timeoutMs} ms`, "TimeoutError");
    call.reject(new CallAbortedError(message, { cause, timedOut }));
    this.codec.bytesFd?.pool?.abandoned(call.id);
    this.writeFrame({ k: "cancel", id: call.id });
  };

  private start(
    target: string | undefined,
    method: string | undefined,
    fnId: number | undefined,
    args: unknown[],
    options: CallOptions | undefined,
  ): Promise<unknown> {
    // After a disconnect the owner closes with the real cause (a crash): a call made meanwhile is held, never sent,
    // and rejects with that cause like the calls in flight (a kill never surfaces as a closed connection).
    if (this.closedWith !== undefined) return Promise.reject(this.closedWith);
    if (!Array.isArray(args)) return Promise.reject(new TypeError("call args must be an array"));
    const signal = options?.signal;
    let kw: Record<string, unknown> | undefined;
    try {
      checkCallOptions(options);
      const split = takeKwargs(args, options?.kwargs);
      if (split !== undefined) ({ args, kw } = split);
    } catch (err) {
      return Promise.reject(err);
    }
    if (signal?.aborted) {
      const what = fnId === undefined ? `${target}.${method}` : `callable #${fnId}`;
      return Promise.reject(abortedBeforeSent(`call ${what}`, signal.reason));
    }
    const id = this.nextCallId++;
    let chunks: FrameChunks | PlainMessage;
    try {
      const plainArgs = kw === undefined ? plainListJson(args) : undefined;
      if (plainArgs !== undefined) chunks = { id, keys: this.callKeys(target, method, fnId), json: plainArgs };
      else {
        const message =
          fnId === undefined ? { k: "call" as const, id, target, method } : { k: "call" as const, id, fn: fnId };
        chunks = encodeMessage(this.codec, this.callables, message, "args", args, "args", kw, id);
      }
    } catch (err) {
      return Promise.reject(err);
    }
    const call = new PendingCall(this.abandon, id, target, method, fnId);
    const promise = new Promise<unknown>((resolve, reject) => {
      call.resolve = resolve;
      call.reject = reject;
    });
    this.pending.add(call);
    if (signal !== undefined || options?.timeoutMs !== undefined) call.watch(signal, options?.timeoutMs);
    this.write(chunks);
    return promise;
  }

  /** The header text of a call to `target.method` or callable `fnId` after its id (cached for the last one). */
  private callKeys(target: string | undefined, method: string | undefined, fnId: number | undefined): string {
    if (target !== this.lastTarget || method !== this.lastMethod || fnId !== this.lastFn) {
      this.lastCallKeys = callKeysJson(target, method, fnId);
      this.lastTarget = target;
      this.lastMethod = method;
      this.lastFn = fnId;
    }
    return this.lastCallKeys;
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.closedWith !== undefined) return;
    try {
      // The commonest read, one plain result alone: it runs none of the host's code (the caller's continuation runs
      // later, as a microtask), so it is not timed for the turn budget: two clock reads less a call. A read this small
      // did not fill libuv's buffer, so it ends this turn's reading anyway: a flood of them cannot hold the loop.
      if (this.decoder.pushLone(chunk)) return;
    } catch (err) {
      return this.protocolFailure(err);
    }
    const started = performance.now();
    this.heldSince = started;
    try {
      this.decoder.push(chunk);
    } catch (err) {
      this.protocolFailure(err);
    }
    this.busyMs += performance.now() - started;
    if (this.busyMs > TURN_BUDGET_MS) this.yieldTurn();
  };

  /**
   * The frames of one read run back to back and their replies leave together at the end of the tick; once they
   * have run for HOLD_REPLIES_MS, what is gathered leaves now, so a slow host function's reply (and those before
   * it) does not wait for the calls after it.
   */
  private releaseHeldReplies(): void {
    const now = performance.now();
    if (now - this.heldSince <= (this.options.holdRepliesMs ?? HOLD_REPLIES_MS)) return;
    this.outbox.flushNow();
    this.heldSince = now;
  }

  /**
   * A flood of small frames (events) arrives as many 64 KiB reads in one turn of the event loop: past
   * TURN_BUDGET_MS of decoding, reading pauses until the next turn, so timers and other extensions get theirs.
   */
  private yieldTurn(): void {
    if (this.yielding) return;
    this.yielding = true;
    this.stream.pause();
    setImmediate(() => {
      this.busyMs = 0;
      this.yielding = false;
      if (this.closedWith === undefined) this.stream.resume();
    });
  }

  private readonly onEnd = (): void => {
    this.disconnected(new ExtensionClosedError("the connection was closed by the other side"));
  };

  private readonly onError = (err: Error): void => {
    this.disconnected(new ExtensionClosedError(`the connection failed: ${err.message}`, { cause: err }));
  };

  private disconnected(error: ExtensionClosedError): void {
    if (this.closedWith !== undefined || this.disconnectedWith !== undefined) return;
    if (this.options.onDisconnect === undefined) return this.close(error);
    this.disconnectedWith = error;
    this.options.onDisconnect(error);
  }

  private protocolFailure(err: unknown): void {
    if (this.closedWith !== undefined) return;
    const error = err instanceof ProtocolError ? err : new ProtocolError(`protocol failure: ${err}`, { cause: err });
    this.close(error);
    this.options.onProtocolError?.(error);
  }

  /**
   * The hot reply: a frame that is one plain result is answered from its bytes, without the header's text and object
   * or the general checks (loneResult accepts only what they would). False: any other frame, which receive() handles.
   */
  private readonly receiveLoneHeader = (data: Buffer, start: number, end: number): boolean => {
    const result = loneResult(data, start, end);
    if (result === undefined) return false;
    if (this.closedWith !== undefined) return true;
    this.codec.bytesFd?.pool?.answered(result.id);
    this.answered(result.id, plain(result.value, "result"));
    return true;
  };

  /** Handles one frame; throws ProtocolError when the message is malformed (the decoder passes it up). */
  private receive(frame: Frame): void {
    if (this.closedWith !== undefined) return;
    const msg = parseMessage(frame.header, this.limits.maxFdsPerFrame);
    if (msg.k === "batch") {
      for (const inner of msg.m) {
        this.dispatch(inner, frame, []);
        this.releaseHeldReplies();
      }
      return;
    }
    if (msg.k === "calls") {
      const { target, method, ids, args } = msg;
      for (let i = 0; i < ids.length; i++) {
        this.incoming.invoke({ k: "call", id: ids[i]!, target, method, args: args[i]! }, plain(args[i]!, "call"));
        this.releaseHeldReplies();
      }
      return;
    }
    if (msg.k === "results") {
      for (let i = 0; i < msg.ids.length; i++)
        this.dispatch({ k: "result", id: msg.ids[i]!, value: msg.values[i] }, frame, []);
      return;
    }
    const count = msg.f ?? 0;
    if (count === 0) return this.dispatch(msg, frame, []);
    const channel = this.options.fdChannel;
    if (channel === undefined)
      throw new ProtocolError(`a frame announced ${count} file descriptors, but this connection carries none`);
    const fds = channel.receive(count);
    try {
      this.dispatch(msg, frame, fds);
    } finally {
      for (const fd of fds) channel.closeReceived(fd); // the frame's fds that no decode took
    }
  }

  private dispatch(
    msg: Exclude<Message, BatchMessage | CallsMessage | ResultsMessage>,
    frame: Frame,
    fds: number[],
  ): void {
    switch (msg.k) {
      case "call": {
        if (msg.x !== 1) return this.incoming.invoke(msg, plain(msg.args, "call"), msg.kw && plain(msg.kw, "call"));
        if (msg.kw === undefined) return this.incoming.invoke(msg, this.decode([msg.args], frame, fds)[0] as unknown[]);
        const [args, kw] = this.decode([msg.args, msg.kw], frame, fds);
        return this.incoming.invoke(msg, args as unknown[], kw as Record<string, unknown>);
      }
      case "result": {
        this.codec.bytesFd?.pool?.answered(msg.id);
        const value = msg.x === 1 ? this.decode([msg.value], frame, fds)[0] : plain(msg.value, "result");
        return this.answered(msg.id, value);
      }
      case "error": {
        this.codec.bytesFd?.pool?.answered(msg.id);
        const call = this.settle(msg.id);
        if (call === undefined) return this.streams.end(msg.id, new RemoteError(msg.error));
        return call.reject(new RemoteError(msg.error));
      }
      case "cancel":
        return this.incoming.cancel(msg.id);
      case "item": {
        this.streams.expectItem(msg.id);
        // Decoded even when the consumer stopped reading: tensors and callables in it must be booked, to be released.
        const value = msg.x === 1 ? this.decode([msg.value], frame, fds)[0] : plain(msg.value, "item");
        return this.streams.item(msg.id, value === undefined ? null : value);
      }
      case "credit":
        return this.streams.producers.credit(msg.id, msg.n);
      case "release":
        return this.released(msg);
      case "event":
        msg.payload = msg.x === 1 ? this.decode([msg.payload], frame, fds)[0] : plain(msg.payload, "event");
        // Decoded first even when dropped: tensors and callables in it must reach the ledger, to be released.
        if (this.options.admitEvent?.(msg.name, frame.size ?? 0) === false) return;
        return this.control(msg);
      default:
        return this.control(msg);
    }
  }

  /** `path` also taking the extension's lent memfds, which go back to it in `release` messages once read. */
  private withLentReturns(path: BytesFd | undefined): BytesFd | undefined {
    if (path === undefined) return undefined;
    const returns = new LentReturns((bytes) => this.writeFrame({ k: "release", fns: [], bytes }));
    return { ...path, returnLent: (lent) => returns.add(lent) };
  }

  /** The result `value` of our call `id` (or the end of stream `id`): the call resolves, undefined as null. */
  private answered(id: number, value: unknown): void {
    const call = this.settle(id);
    if (call === undefined) return this.streams.end(id);
    call.resolve(value === undefined ? null : value);
  }

  /** Our call `id` answered: forgotten here and returned, or undefined for the answer to a call we abandoned. */
  private settle(id: number): PendingCall | undefined {
    const call = this.pending.get(id);
    if (call === undefined) return undefined;
    this.pending.delete(id);
    call.unwatch();
    return call;
  }

  private released(msg: ReleaseMessage): void {
    this.callables.release(msg.fns);
    for (const kind of this.options.kinds ?? []) kind.released?.(msg);
  }

  /** Decodes the values of one frame (a call's `args` and `kw` together); the codec owns the frame's `fds` from here on. */
  private decode(values: unknown[], frame: Frame, fds: number[]): unknown[] {
    const owned = fds.splice(0, fds.length);
    try {
      return this.codec.decodeAll(values, frame.attachments, owned, (fd) => this.options.fdChannel?.closeReceived(fd));
    } catch (err) {
      if (err instanceof ProtocolError) throw err;
      throw new ProtocolError(`${String(frame.header.k)} message holds a value that cannot be decoded: ${err}`, {
        cause: err,
      });
    }
  }

  /** Hands a control message to the owner; an owner callback that throws is reported as uncaught. */
  private control(message: ControlMessage): void {
    try {
      this.options.onControl?.(message);
    } catch (err) {
      queueMicrotask(() => {
        throw err;
      });
    }
  }

  private writeFrame(message: Message): void {
    if (this.closedWith === undefined) this.write(encodeFrame(message));
  }

  /** Writes a frame: its chunks, or (a plain call) its JSON header text, which the outbox frames. */
  private write(chunks: FrameChunks | PlainMessage): void {
    if (this.closedWith !== undefined || this.disconnectedWith !== undefined) {
      if (Array.isArray(chunks)) for (const hold of chunks.holds ?? []) hold.release();
      return;
    }
    if (!Array.isArray(chunks)) {
      if (this.options.fdChannel?.queued) return this.options.fdChannel.submit([], [], () => this.writeNow(chunks));
      return this.writeNow(chunks);
    }
    const channel = this.options.fdChannel;
    const fds = chunks.fds ?? [];
    if (fds.length > 0 && channel === undefined) {
      for (const hold of chunks.holds ?? []) hold.release();
      throw new TypeError("cannot send file descriptors: this connection has no fd channel");
    }
    if (channel !== undefined && (fds.length > 0 || channel.queued > 0)) {
      channel.submit(fds, chunks.holds ?? [], () => this.writeNow(chunks));
      return;
    }
    this.writeNow(chunks);
  }

  /**
   * Writes a frame (chunks, or a header's JSON text). The outbox holds it until the end of this tick, so the frames
   * of a burst of calls (or of replies) leave in one write instead of one syscall each.
   */
  private writeNow(chunks: Buffer[] | PlainMessage): void {
    if (this.closedWith !== undefined || this.disconnectedWith !== undefined) return;
    if (!Array.isArray(chunks)) this.outbox.pushPlain(chunks);
    else this.outbox.push(chunks);
  }
}

/**
 * A value that came without tags (no `x`): it is not walked by the decoder, so its depth is checked here, with the
 * codec's limit, so that no message kind can hand the application a value deeper than a tagged one may be.
 */
function plain<T>(value: T, kind: string): T {
  if (typeof value === "object" && value !== null && nestsDeeperThan(value, MAX_DEPTH)) {
    throw new ProtocolError(
      `${kind} message holds a value nested deeper than the limit maxDepth = ${MAX_DEPTH} levels`,
    );
  }
  return value;
}
