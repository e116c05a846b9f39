// A peer's streams both ways: its own stream calls awaiting items, and the producers answering the other side's.

import { ProtocolError } from "../errors.js";
import type { CallableTables } from "./callables.js";
import type { Codec } from "./codec.js";
import { takeKwargs } from "./kwargs.js";
import { encodeMessage, type FrameChunks } from "./messages.js";
import { abortedBeforeSent, checkCallOptions, toWireError } from "./peer-calls.js";
import type { Message } from "./protocol.js";
import { checkStreamOptions, failedStream, StreamCall, type StreamOptions } from "./stream-call.js";
import { OutgoingStreams } from "./stream-producer.js";

/** What the streams need from their peer. */
export interface StreamWire {
  readonly codec: Codec;
  readonly callables: CallableTables;
  /** A fresh call id (streams share the peer's id space: a stream is a call). */
  nextId(): number;
  write(chunks: FrameChunks): void;
  writeFrame(message: Message): void;
  /** Bytes written and not yet flushed. */
  backlog(): number;
}

export class PeerStreams {
  /** Our stream calls, until their end (result or error) arrives, also after we cancelled them. */
  private readonly calls = new Map<number, StreamCall>();
  readonly producers: OutgoingStreams;
  private drainWaiters: (() => void)[] = [];

  constructor(private readonly wire: StreamWire) {
    this.producers = new OutgoingStreams({
      item: (id, value) =>
        wire.write(encodeMessage(wire.codec, wire.callables, { k: "item", id }, "value", value, "item")),
      end: (id, error) =>
        wire.writeFrame(
          error === undefined ? { k: "result", id, value: null } : { k: "error", id, error: toWireError(error) },
        ),
      backlog: () => wire.backlog(),
      whenDrained: (wake) => this.drainWaiters.push(wake),
    });
  }

  /** Our stream calls in flight. */
  get size(): number {
    return this.calls.size;
  }

  /** Sends `target.method(...args)` as a stream call; a refusal before sending is a stream whose first read rejects. */
  open(target: string, method: string, args: unknown[], options: StreamOptions): AsyncIterableIterator<unknown> {
    const what = `${target}.${method}`;
    let window: number;
    let chunks: FrameChunks;
    const id = this.wire.nextId();
    try {
      if (typeof target !== "string" || typeof method !== "string")
        throw new TypeError("callStream(target, method, args): target and method must be strings");
      if (!Array.isArray(args)) throw new TypeError("stream args must be an array");
      window = checkStreamOptions(options);
      checkCallOptions({ signal: options.signal });
      let kw: Record<string, unknown> | undefined;
      const split = takeKwargs(args, options.kwargs);
      if (split !== undefined) ({ args, kw } = split);
      const signal = options.signal;
      if (signal?.aborted) throw abortedBeforeSent(`stream ${what}`, signal.reason);
      chunks = encodeMessage(
        this.wire.codec,
        this.wire.callables,
        { k: "call", id, target, method, stream: window },
        "args",
        args,
        "args",
        kw,
      );
    } catch (err) {
      return failedStream(err);
    }
    const call = new StreamCall(
      {
        credit: (sid, n) => this.wire.writeFrame({ k: "credit", id: sid, n }),
        cancel: (sid) => this.wire.writeFrame({ k: "cancel", id: sid }),
      },
      id,
      window,
      what,
      options.signal,
      options.idleTimeoutMs,
    );
    this.calls.set(id, call);
    this.wire.write(chunks);
    return call;
  }

  /** Throws ProtocolError unless `id` is a stream call of ours (checked before its item's value is decoded). */
  expectItem(id: number): void {
    if (!this.calls.has(id)) throw new ProtocolError(`item ${id}: no stream call with this id is open`);
  }

  /** One decoded item of our stream call `id` (checked by expectItem); ProtocolError past its credit. */
  item(id: number, value: unknown): void {
    this.calls.get(id)?.accept(value);
  }

  /** Our stream call `id` ended (its result or error); an id that is none of ours was a call answered already. */
  end(id: number, error?: unknown): void {
    const call = this.calls.get(id);
    if (call === undefined) return;
    this.calls.delete(id);
    call.finish(error);
  }

  /** The socket drained: producers that waited for it go on. */
  drained(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const wake of waiters) wake();
  }

  /** The connection closed: our streams end with `error` (after their queued items), producers stop silently. */
  close(error: Error): void {
    const calls = [...this.calls.values()];
    this.calls.clear();
    this.producers.clear();
    this.drainWaiters = [];
    for (const call of calls) call.finish(error);
  }
}
