// A peer's outgoing bytes: the frames of one tick gathered in one buffer and written to the socket in one go.

import type { Writable } from "node:stream";
import { PlainRun, plainMessageJson, type PlainMessage } from "./plain-runs.js";

/** Size of a fresh arena; frames are written into it back to back until it is full. */
const ARENA_BYTES = 64 * 1024;
/** Chunks from this size on are written as they are (no copy); smaller ones are copied into the arena. */
const COPY_BELOW = 16 * 1024;
/** A JSON header up to this many characters is written into the arena as text (no Buffer of its own). */
const INLINE_JSON_BELOW = 4 * 1024;

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
    if (!this.batching || message.json.length >= INLINE_JSON_BELOW) return this.pushJson(plainMessageJson(message));
    if (this.run.add(message)) this.closeBatch();
    else this.schedule();
  }

  /** Writes the gathered plain messages as one frame. */
  private closeBatch(): void {
    const json = this.run.take();
    if (json !== undefined) this.pushJson(json);
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
