// Admits or drops each line and event of one extension by its stream's budget, and reports what it dropped.

import { TokenBucket } from "./token-bucket.js";
import { OUTPUT_STREAMS, type OutputLimits, type OutputStream } from "./output-limits.js";

/** What one report says: how many lines (or events) and bytes of `stream` were dropped since the last one. */
export interface DroppedOutput {
  stream: OutputStream;
  lines: number;
  bytes: number;
}

export interface FloodGateHooks {
  /** Called at most once per `reportEveryMs` per stream while it drops, and once more by `close()`. */
  onDropped(report: DroppedOutput): void;
  /** Called once per stream, the first time it drops: the one warning line. */
  onFirstDrop(stream: OutputStream): void;
  /** The clock (performance.now() unless a test gives another). */
  now?: () => number;
}

/** How often drops are summed into one `dropped` report: a flood costs the host one event a second, not one a line. */
const REPORT_EVERY_MS = 1000;

interface StreamState {
  /** The byte bucket's size: a line or event larger than it passes when the bucket is full, and is then owed. */
  byteBurst: number;
  lines: TokenBucket;
  bytes: TokenBucket;
  droppedLines: number;
  droppedBytes: number;
  warned: boolean;
}

/**
 * One per extension. `admit` is O(1) and allocates nothing; the only timer is the report's, armed by the first
 * drop and cleared by the report or by `close()` (so a dead extension leaves none behind).
 */
export class FloodGate {
  private readonly streams: Record<OutputStream, StreamState>;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    limits: OutputLimits,
    private readonly hooks: FloodGateHooks,
  ) {
    this.now = hooks.now ?? (() => performance.now());
    const start = this.now();
    const byteBurst = Math.max(1, Math.ceil((limits.bytesPerSecond * limits.burst) / limits.linesPerSecond));
    const make = (): StreamState => ({
      byteBurst,
      lines: new TokenBucket(limits.linesPerSecond, limits.burst, start),
      bytes: new TokenBucket(limits.bytesPerSecond, byteBurst, start),
      droppedLines: 0,
      droppedBytes: 0,
      warned: false,
    });
    this.streams = Object.fromEntries(OUTPUT_STREAMS.map((s) => [s, make()])) as Record<OutputStream, StreamState>;
  }

  /** True when one line (or event) of `bytes` bytes may pass on `stream`; false when it is dropped (and counted). */
  admit(stream: OutputStream, bytes: number): boolean {
    if (this.closed) return false;
    const state = this.streams[stream];
    const now = this.now();
    // Both budgets must hold: the byte budget is checked first so that a refused line spends no line token. One
    // larger than the byte bucket needs it full, and leaves it in debt: rare big events pass, the rate still holds.
    if (state.bytes.available(now) >= Math.min(bytes, state.byteBurst) && state.lines.take(1, now)) {
      state.bytes.spend(bytes, now);
      return true;
    }
    this.drop(stream, 1, bytes);
    return false;
  }

  /**
   * True while `stream` has not one line of budget: its reader may then count a whole chunk's lines and drop them
   * undecoded (`drop`), which costs the host a newline scan instead of a string per line.
   */
  exhausted(stream: OutputStream): boolean {
    const state = this.streams[stream];
    const now = this.now();
    return this.closed || state.lines.available(now) < 1 || state.bytes.available(now) <= 0;
  }

  /** Counts `lines` lines (or events) of `bytes` bytes dropped on `stream`. */
  drop(stream: OutputStream, lines: number, bytes: number): void {
    if (this.closed) return;
    const state = this.streams[stream];
    state.droppedLines += lines;
    state.droppedBytes += bytes;
    if (!state.warned) {
      state.warned = true;
      this.hooks.onFirstDrop(stream);
    }
    this.timer ??= setTimeout(() => this.report(), REPORT_EVERY_MS).unref();
  }

  /** Reports what is still uncounted and stops: later lines are dropped silently (the extension is gone). */
  close(): void {
    if (this.closed) return;
    this.report();
    this.closed = true;
  }

  private report(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const stream of OUTPUT_STREAMS) {
      const state = this.streams[stream];
      if (state.droppedLines === 0) continue;
      const report = { stream, lines: state.droppedLines, bytes: state.droppedBytes };
      state.droppedLines = 0;
      state.droppedBytes = 0;
      this.hooks.onDropped(report);
    }
  }
}
