// The symmetric RPC peer over one byte stream: calls both ways, callables, cancel, release and close.

import type { Duplex } from "node:stream";
import { CallAbortedError, ExtensionClosedError, ProtocolError, RemoteError } from "../errors.js";
import { Codec } from "./codec.js";
import { encodeFrame, FrameDecoder, type Frame } from "./framing.js";
import { CallableTables } from "./peer-callables.js";
import { IncomingCalls } from "./peer-incoming.js";
import {
  checkCall, checkFdCount, checkRelease, checkReleasedCuda, checkReleasedSegments, checkWireError, encodeCallMessage, encodeMessage,
  isCallId, type FrameChunks,
} from "./peer-messages.js";
import { takeKwargs } from "./kwargs.js";
import { DEFAULT_LIMITS, nestsDeeperThan, type ProtocolLimits } from "./limits.js";
import { MAX_DEPTH } from "./codec-encode.js";
import { checkCallOptions, isTimeoutReason, PendingCall, type PendingOwner } from "./peer-pending.js";
import type { CallOptions, ControlMessage, PeerState, PeerStats, RpcPeerOptions } from "./peer-types.js";

export type { CallOptions, ControlMessage, PeerState, PeerStats, RpcPeerOptions } from "./peer-types.js";

const CONTROL_KINDS = new Set(["hello", "init", "ready", "fatal", "shutdown"]);
const RPC_KINDS = new Set(["call", "result", "error", "cancel", "release", "event"]);
/** Decoding time one connection may take before its reading yields to the rest of the event loop. */
const TURN_BUDGET_MS = 4;

export class RpcPeer implements PendingOwner {
  private readonly stream: Duplex;
  private readonly options: RpcPeerOptions;
  private readonly codec: Codec;
  private readonly callables: CallableTables;
  private readonly decoder: FrameDecoder;
  private readonly limits: ProtocolLimits;
  private readonly pending = new Map<number, PendingCall>();
  private readonly incoming: IncomingCalls;
  private nextCallId = 1;
  private closedWith: Error | undefined;
  /** Set when the stream ended and `onDisconnect` left closing to the owner. */
  private disconnectedWith: ExtensionClosedError | undefined;
  /** Decoding time since reading last yielded (see yieldTurn). */
  private busyMs = 0;
  private yielding = false;

  constructor(stream: Duplex, options: RpcPeerOptions = {}) {
    this.stream = stream;
    this.options = options;
    this.callables = new CallableTables(
      (fnId, args) => this.callFn(fnId, args),
      (fns) => this.writeFrame({ k: "release", fns }),
    );
    this.codec = new Codec({ extensions: options.extensions, callables: this.callables });
    const link = {
      releaseSegments: (segs: number[]) => this.writeFrame({ k: "release", fns: [], segs }),
      releaseCudaExports: (cudaExports: number[]) => this.writeFrame({ k: "release", fns: [], cudaExports }),
    };
    for (const extension of options.extensions ?? []) extension.bind?.(link);
    this.incoming = new IncomingCalls({
      codec: this.codec,
      callables: this.callables,
      resolveTarget: options.resolveTarget,
      caller: options.caller,
      write: (chunks) => this.write(chunks),
    });
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    if (options.maxFrameBytes !== undefined) this.limits.maxFrameBytes = options.maxFrameBytes;
    this.decoder = new FrameDecoder((frame) => this.receive(frame), this.limits);
    stream.on("data", this.onData);
    stream.on("end", this.onEnd);
    stream.on("close", this.onEnd);
    stream.on("error", this.onError);
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
      pending: this.pending.size,
      incoming: this.incoming.size,
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
    if (!Number.isSafeInteger(fnId) || fnId < 0) return Promise.reject(new TypeError(`callFn: bad callable id ${fnId}`));
    return this.start(undefined, undefined, fnId, args, options);
  }

  /** Sends a control message (init, shutdown, ...) as is; RPC messages are the peer's own business. */
  send(message: ControlMessage, attachments: readonly Uint8Array[] = []): void {
    if (this.closedWith !== undefined) throw this.closedWith;
    if (RPC_KINDS.has(message.k)) throw new TypeError(`send() is for control messages; use the peer's methods for "${message.k}"`);
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
    const error = cause instanceof Error
      ? cause
      : new ExtensionClosedError("the connection was closed", cause === undefined ? undefined : { cause });
    this.closedWith = error;
    const calls = [...this.pending.values()];
    this.pending.clear();
    this.incoming.clear();
    this.callables.clear();
    for (const call of calls) {
      call.unwatch();
      call.reject(error);
    }
    this.stream.destroy();
    this.options.fdChannel?.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  /**
   * @internal PendingOwner: the call's signal fired or its timeout passed. Rejects locally, then tells the
   * other side.
   */
  abandon(call: PendingCall, reason: unknown, timedOut: boolean): void {
    if (this.pending.get(call.id) !== call) return;
    this.pending.delete(call.id);
    call.unwatch();
    const message = timedOut
      ? `call ${call.describe()} timed out${reason === undefined ? ` after ${call.timeoutMs} ms` : ""}`
      : `call ${call.describe()} was aborted`;
    const cause = reason ?? new DOMException(`timed out after ${call.timeoutMs} ms`, "TimeoutError");
    call.reject(new CallAbortedError(message, { cause, timedOut }));
    this.writeFrame({ k: "cancel", id: call.id });
  }

  private start(
    target: string | undefined, method: string | undefined, fnId: number | undefined,
    args: unknown[], options: CallOptions | undefined,
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
      const reason: unknown = signal.reason;
      const what = fnId === undefined ? `${target}.${method}` : `callable #${fnId}`;
      return Promise.reject(new CallAbortedError(`call ${what} was aborted before it was sent`,
        { cause: reason, timedOut: isTimeoutReason(reason) }));
    }
    const id = this.nextCallId++;
    let chunks: FrameChunks;
    try {
      const message = fnId === undefined ? { k: "call", id, target, method } : { k: "call", id, fn: fnId };
      chunks = encodeCallMessage(this.codec, this.callables, message, args, kw);
    } catch (err) {
      return Promise.reject(err);
    }
    const call = new PendingCall(this, id, target, method, fnId);
    const promise = new Promise<unknown>((resolve, reject) => {
      call.resolve = resolve;
      call.reject = reject;
    });
    this.pending.set(id, call);
    if (signal !== undefined || options?.timeoutMs !== undefined) call.watch(signal, options?.timeoutMs);
    this.write(chunks);
    return promise;
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.closedWith !== undefined) return;
    const started = performance.now();
    try {
      this.decoder.push(chunk);
    } catch (err) {
      this.protocolFailure(err);
    }
    this.busyMs += performance.now() - started;
    if (this.busyMs > TURN_BUDGET_MS) this.yieldTurn();
  };

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

  /** Handles one frame; throws ProtocolError when the message is malformed (the decoder passes it up). */
  private receive(frame: Frame): void {
    if (this.closedWith !== undefined) return;
    const count = checkFdCount(frame.header, this.limits.maxFdsPerFrame);
    if (count === 0) return this.dispatch(frame, []);
    const channel = this.options.fdChannel;
    if (channel === undefined) throw new ProtocolError(`a frame announced ${count} file descriptors, but this connection carries none`);
    const fds = channel.receive(count);
    try {
      this.dispatch(frame, fds);
    } finally {
      for (const fd of fds) channel.closeReceived(fd); // the frame's fds that no decode took
    }
  }

  private dispatch(frame: Frame, fds: number[]): void {
    const msg = frame.header;
    switch (msg.k) {
      case "call": {
        checkCall(msg);
        if (msg.kw === undefined) return this.incoming.invoke(msg, msg.x === 1 ? (this.decode(msg.args, frame, fds) as unknown[]) : plain(msg.args, "call"));
        if (msg.x !== 1) return this.incoming.invoke(msg, plain(msg.args, "call"), plain(msg.kw, "call"));
        const [args, kw] = this.decodeAll([msg.args, msg.kw], frame, fds);
        return this.incoming.invoke(msg, args as unknown[], kw as Record<string, unknown>);
      }
      case "result": {
        if (!isCallId(msg.id)) throw new ProtocolError(`result: "id" must be a positive integer`);
        const value = msg.x === 1 ? this.decode(msg.value, frame, fds) : plain(msg.value, "result");
        const call = this.pending.get(msg.id);
        if (call === undefined) return; // the answer to a call we abandoned
        this.pending.delete(msg.id);
        call.unwatch();
        return call.resolve(value === undefined ? null : value);
      }
      case "error": {
        if (!isCallId(msg.id)) throw new ProtocolError(`error: "id" must be a positive integer`);
        const wire = checkWireError(msg.error, msg.id);
        const call = this.pending.get(msg.id);
        if (call === undefined) return;
        this.pending.delete(msg.id);
        call.unwatch();
        return call.reject(new RemoteError(wire));
      }
      case "cancel":
        if (!isCallId(msg.id)) throw new ProtocolError(`cancel: "id" must be a positive integer`);
        return this.incoming.cancel(msg.id);
      case "release": {
        const segs = checkReleasedSegments(msg);
        const cuda = checkReleasedCuda(msg);
        this.callables.release(checkRelease(msg));
        if (segs.length > 0) this.options.onSegmentsReleased?.(segs);
        if (cuda.length > 0) this.options.onCudaReleased?.(cuda);
        return;
      }
      case "event": {
        if (typeof msg.name !== "string") throw new ProtocolError(`event: "name" must be a string`);
        msg.payload = msg.x === 1 ? this.decode(msg.payload, frame, fds) : plain(msg.payload, "event");
        // Decoded first even when dropped: tensors and callables in it must reach the ledger, to be released.
        if (this.options.admitEvent?.(msg.name, frame.size ?? 0) === false) return;
        return this.control(msg as unknown as ControlMessage);
      }
      default:
        if (typeof msg.k === "string" && CONTROL_KINDS.has(msg.k)) return this.control(msg as unknown as ControlMessage);
        throw new ProtocolError(`unknown message kind ${JSON.stringify(msg.k)}`);
    }
  }

  /** Decodes a value; the codec owns the frame's `fds` from here on (they leave the list). */
  private decode(value: unknown, frame: Frame, fds: number[]): unknown {
    const owned = fds.splice(0, fds.length);
    try {
      return this.codec.decode(value, frame.attachments, owned, (fd) => this.options.fdChannel?.closeReceived(fd));
    } catch (err) {
      if (err instanceof ProtocolError) throw err;
      throw new ProtocolError(`${String(frame.header.k)} message holds a value that cannot be decoded: ${err}`, { cause: err });
    }
  }

  /** Decodes a call's `args` and `kw` together: one decode, so both may use the frame's fds. */
  private decodeAll(values: unknown[], frame: Frame, fds: number[]): unknown[] {
    const owned = fds.splice(0, fds.length);
    try {
      return this.codec.decodeAll(values, frame.attachments, owned, (fd) => this.options.fdChannel?.closeReceived(fd));
    } catch (err) {
      if (err instanceof ProtocolError) throw err;
      throw new ProtocolError(`call message holds a value that cannot be decoded: ${err}`, { cause: err });
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

  private writeFrame(message: Record<string, unknown>): void {
    if (this.closedWith === undefined) this.write(encodeFrame(message));
  }


  private write(chunks: FrameChunks): void {
    if (this.closedWith !== undefined || this.disconnectedWith !== undefined) {
      for (const hold of chunks.holds ?? []) hold.release();
      return;
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

  private writeNow(chunks: Buffer[]): void {
    if (this.closedWith !== undefined || this.disconnectedWith !== undefined) return;
    const stream = this.stream;
    if (chunks.length === 1) {
      stream.write(chunks[0]);
      return;
    }
    stream.cork();
    for (const chunk of chunks) stream.write(chunk);
    stream.uncork();
  }
}

/**
 * A value that came without tags (no `x`): it is not walked by the decoder, so its depth is checked here, with the
 * codec's limit, so that no message kind can hand the application a value deeper than a tagged one may be.
 */
function plain<T>(value: T, kind: string): T {
  if (typeof value === "object" && value !== null && nestsDeeperThan(value, MAX_DEPTH)) {
    throw new ProtocolError(`${kind} message holds a value nested deeper than the limit maxDepth = ${MAX_DEPTH} levels`);
  }
  return value;
}
