// A peer's outgoing bytes: the frames of one tick gathered in one buffer and written to the socket in one go.

import type { Writable } from "node:stream";
import { CALL_HEAD, PlainRun, plainMessageJson, RESULT_HEAD, VALUE_KEY, type PlainMessage } from "./plain-runs.js";

/** Size of a fresh arena; frames are written into it back to back until it is full. */
const ARENA_BYTES = 64 * 1024;
/** Chunks from this size on are written as they are (no copy); smaller ones are copied into the arena. */
const COPY_BELOW = 16 * 1024;
/** A JSON header up to this many characters is written into the arena as text (no Buffer of its own). */
const INLINE_JSON_BELOW = 4 * 1024;

const CALL_HEAD_BYTES = Buffer.from(CALL_HEAD);
const RESULT_HEAD_BYTES = Buffer.from(RESULT_HEAD);
/** Digits of the largest id (2^53 - 1). */
const MAX_ID_DIGITS = 16;
const CLOSE = 0x7d; // }

/** Writes the digits of the natural `n` at `at`; where they end. */
function writeDigits(arena: Buffer, at: number, n: number): number {
  let digits = 1;
  for (let rest = n; rest >= 10; rest = Math.floor(rest / 10)) digits++;
  for (let i = at + digits - 1; i >= at; i--) {
    arena[i] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  return at + digits;
}

/** Writes `text` at `at` when every character is ASCII (one byte each); where it ends, or -1 at the first that is not. */
function writeAscii(arena: Buffer, at: number, text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7f) return -1;
    arena[at++] = c;
  }
  return at;
}

/**
 * Collects frames until the end of the tick, then writes them: one `write` (one syscall) for a burst of small frames
 * instead of one buffered request each. Bytes go into an arena that only ever advances, so bytes handed to the socket
 * are never overwritten; a full arena is dropped (the socket keeps what it still writes alive) and a new one begun.
 */
export class Outbox {
  private arena: Buffer | undefined;
  /** Where the bytes not yet handed to the socket begin in the arena, and where they end. */
  private start = 0;
  private end = 0;
  /** Closed runs of bytes (arena slices, large chunks) to write, in order, before the open run. */
  private readonly segments: Buffer[] = [];
  private queuedBytes = 0;
  private scheduled = false;
  /** The other side reads batch frames: plain messages of a tick are gathered into `run` (peer.enableBatches). */
  batching = false;
  private readonly run = new PlainRun();

  constructor(private readonly stream: Writable) {}

  /** Bytes gathered and not yet handed to the socket. */
  get pendingBytes(): number {
    return this.queuedBytes + this.end - this.start + this.run.chars;
  }

  /**
   * Adds a plain call or result (no tags, attachments or fds). With batching on, the plain messages of a tick leave
   * in one frame (plain-runs.ts): the other side parses one header for all of them.
   */
  pushPlain(message: PlainMessage): void {
    if (!this.batching || message.json.length >= INLINE_JSON_BELOW) return this.pushMessage(message);
    if (this.run.add(message)) this.closeBatch();
    else this.schedule();
  }

  /** Writes the gathered plain messages as one frame. */
  private closeBatch(): void {
    const taken = this.run.take();
    if (typeof taken === "string") this.pushJson(taken);
    else if (taken !== undefined) this.pushMessage(taken);
  }

  /**
   * Adds the frame of one plain message. Its text is written into the arena here, byte by byte, when it is ASCII
   * (the commonest): with the host and an extension sharing a CPU, the C++ behind Buffer#write is cold at every call
   * (0.6 µs a small call, bench/README.md, session 16). Anything else is encoded as UTF-8 by pushJson.
   */
  private pushMessage(message: PlainMessage): void {
    const { id, keys, json } = message;
    const head = keys === undefined ? RESULT_HEAD_BYTES : CALL_HEAD_BYTES;
    const middle = keys ?? VALUE_KEY;
    if (json.length >= INLINE_JSON_BELOW || !Number.isSafeInteger(id) || id < 0) {
      return this.pushJson(plainMessageJson(message));
    }
    this.closeBatch(); // frames keep their order
    const arena = this.reserve(8 + head.length + MAX_ID_DIGITS + middle.length + json.length + 1);
    const start = this.end;
    let at = start + 8;
    arena.set(head, at);
    at = writeDigits(arena, at + head.length, id);
    at = writeAscii(arena, at, middle);
    if (at >= 0) at = writeAscii(arena, at, json);
    if (at < 0) return this.pushJson(plainMessageJson(message)); // not ASCII: the bytes written past `end` are dropped
    arena[at++] = CLOSE;
    arena.writeUInt32BE(at - start - 4, start);
    arena.writeUInt32BE(at - start - 8, start + 4);
    this.end = at;
    this.schedule();
  }

  /** Adds a frame with header `json` and no attachments, encoded straight into the arena. */
  pushJson(json: string): void {
    this.closeBatch(); // frames keep their order
    if (json.length >= INLINE_JSON_BELOW) {
      const bytes = Buffer.from(json, "utf8");
      const head = Buffer.allocUnsafe(8);
      head.writeUInt32BE(bytes.length + 4, 0);
      head.writeUInt32BE(bytes.length, 4);
      return this.push([head, bytes]);
    }
    const arena = this.reserve(8 + 3 * json.length); // UTF-8 takes at most 3 bytes per UTF-16 unit
    const at = this.end;
    const n = arena.write(json, at + 8); // UTF-8, the default
    arena.writeUInt32BE(n + 4, at);
    arena.writeUInt32BE(n, at + 4);
    this.end = at + 8 + n;
    this.schedule();
  }

  /** Adds a frame's chunks: small ones are copied into the arena, large ones queued as they are. */
  push(chunks: readonly Buffer[]): void {
    this.closeBatch(); // frames keep their order
    for (const chunk of chunks) {
      if (chunk.length >= COPY_BELOW) {
        this.close();
        this.segments.push(chunk);
        this.queuedBytes += chunk.length;
      } else {
        const arena = this.reserve(chunk.length);
        arena.set(chunk, this.end);
        this.end += chunk.length;
      }
    }
    this.schedule();
  }

  /** The arena with at least `n` free bytes after `end`. */
  private reserve(n: number): Buffer {
    const arena = this.arena;
    if (arena !== undefined && arena.length - this.end >= n) return arena;
    this.close();
    this.arena = Buffer.allocUnsafeSlow(Math.max(ARENA_BYTES, n));
    this.start = this.end = 0;
    return this.arena;
  }

  /** Closes the open run of arena bytes into a segment. */
  private close(): void {
    if (this.end === this.start) return;
    const run = this.arena!.subarray(this.start, this.end);
    this.segments.push(run);
    this.queuedBytes += run.length;
    this.start = this.end;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    process.nextTick(this.flush);
  }

  /** Hands everything gathered to the socket; drops it when the socket is gone (the peer closed meanwhile). */
  private readonly flush = (): void => {
    this.closeBatch(); // still scheduled: the run's frame joins this flush instead of asking for another
    this.scheduled = false;
    this.close();
    const segments = this.segments;
    const stream = this.stream;
    if (segments.length === 1) {
      const only = segments.pop()!; // no array length store (a runtime call) on the hot path
      if (!stream.destroyed) stream.write(only);
    } else if (segments.length > 1) {
      if (!stream.destroyed) {
        stream.cork();
        for (const segment of segments) stream.write(segment);
        stream.uncork();
      }
      segments.length = 0;
    }
    this.queuedBytes = 0;
  };

  /** Writes what is gathered now instead of at the end of the tick (the tick's later frames go as usual). */
  flushNow(): void {
    if (this.scheduled) this.flush();
  }
}
