// A stream call as its caller sees it: the callee's items queued within the credit granted, read by for-await.

import { CallAbortedError, ProtocolError } from "../errors.js";
import { DEFAULT_STREAM_WINDOW, MAX_STREAM_WINDOW } from "./protocol.js";

/** Options of one stream call (`ext.stream(method, args, options)`). */
export interface StreamOptions {
  /** Aborting it cancels the stream: the waiting `next()` rejects with CallAbortedError, the generator is closed. */
  signal?: AbortSignal;
  /**
   * Longest wait for the next item while the consumer waits for it, in ms (a slow consumer never times out); past it
   * the stream is cancelled and `next()` rejects with CallAbortedError (`timedOut`). Default: the call timeout.
   */
  idleTimeoutMs?: number;
  /** Items the producer may run ahead of the consumer (its credit): default 16, at most 65,536. */
  window?: number;
  /** Keyword arguments of the call, as `CallOptions.kwargs`. */
  kwargs?: Record<string, unknown>;
}

/** What a stream needs from its peer. */
export interface StreamLink {
  credit(id: number, n: number): void;
  cancel(id: number): void;
}

interface Waiter {
  resolve(result: IteratorResult<unknown>): void;
  reject(error: unknown): void;
}

const DONE: IteratorResult<unknown> = Object.freeze({ done: true, value: undefined });

/** Validates the stream options once, naming the option; returns the window. */
export function checkStreamOptions(options: StreamOptions): number {
  const { window = DEFAULT_STREAM_WINDOW, idleTimeoutMs } = options;
  if (!(Number.isSafeInteger(window) && window >= 1 && window <= MAX_STREAM_WINDOW)) {
    throw new RangeError(`options.window must be an integer from 1 to ${MAX_STREAM_WINDOW}, got ${window}`);
  }
  if (
    idleTimeoutMs !== undefined &&
    !(typeof idleTimeoutMs === "number" && idleTimeoutMs > 0 && idleTimeoutMs <= 2 ** 31 - 1)
  ) {
    throw new RangeError(
      `options.idleTimeoutMs must be a number of milliseconds between 1 and 2^31-1, got ${idleTimeoutMs}`,
    );
  }
  return window;
}

/**
 * One stream call in flight. The peer feeds it (`accept` per item, `finish` at the call's result or error, or at
 * close); the application reads it as an async iterator. Credit: `window` items at the call, then as the consumer
 * takes half a window, that many more, so the producer never runs more than `window` items ahead of the consumer.
 */
export class StreamCall implements AsyncIterableIterator<unknown> {
  private readonly queue: unknown[] = [];
  private readonly waiters: Waiter[] = [];
  private granted: number;
  private received = 0;
  private taken = 0;
  /** The callee's end (result: no error), kept until the queue before it is read. */
  private end: { error?: unknown } | undefined;
  /** The consumer stopped (return, abort, timeout): items still arriving are counted and dropped. */
  private cancelled = false;
  /** What every later `next()` rejects with (an abort or timeout). */
  private failure: unknown;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly link: StreamLink,
    readonly id: number,
    private readonly window: number,
    private readonly what: string,
    private readonly signal: AbortSignal | undefined,
    private readonly idleTimeoutMs: number | undefined,
  ) {
    this.granted = window;
    signal?.addEventListener("abort", this, { once: true });
  }

  /** Items received and not yet read. */
  get buffered(): number {
    return this.queue.length;
  }

  /** One item from the callee; ProtocolError past the credit granted. */
  accept(value: unknown): void {
    if (this.received >= this.granted) {
      throw new ProtocolError(`item ${this.id}: more items than the ${this.granted} granted to stream ${this.what}`);
    }
    this.received += 1;
    if (this.cancelled) return;
    const waiter = this.waiters.shift();
    if (waiter === undefined) {
      this.queue.push(value);
      return;
    }
    this.disarm();
    this.took();
    waiter.resolve({ done: false, value });
    if (this.waiters.length > 0) this.arm();
  }

  /** The stream ended: the callee's result (no error), its error, or the connection's close. */
  finish(error?: unknown): void {
    if (this.end !== undefined) return;
    this.end = error === undefined ? {} : { error };
    this.signal?.removeEventListener("abort", this);
    this.disarm();
    if (this.cancelled) return;
    while (this.waiters.length > 0 && this.queue.length === 0) this.settleEnd(this.waiters.shift()!);
  }

  next(): Promise<IteratorResult<unknown>> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.queue.length > 0) {
      this.took();
      return Promise.resolve({ done: false, value: this.queue.shift() });
    }
    if (this.cancelled) return Promise.resolve(DONE);
    if (this.end !== undefined) return new Promise((resolve, reject) => this.settleEnd({ resolve, reject }));
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      if (this.waiters.length === 1) this.arm();
    });
  }

  /** The consumer is done (a `break` out of for-await): the callee's generator is closed. */
  return(): Promise<IteratorResult<unknown>> {
    this.stop(undefined);
    return Promise.resolve(DONE);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** AbortSignal listener. */
  handleEvent(): void {
    const reason: unknown = this.signal?.reason;
    const timedOut =
      typeof reason === "object" && reason !== null && (reason as { name?: unknown }).name === "TimeoutError";
    this.stop(new CallAbortedError(`stream ${this.what} was aborted`, { cause: reason, timedOut }));
  }

  /** Stops reading: tells the callee (unless it already ended), empties the queue, answers the waiting reads. */
  private stop(failure: Error | undefined): void {
    if (this.cancelled || this.failure !== undefined) return;
    this.failure = failure;
    this.disarm();
    this.signal?.removeEventListener("abort", this);
    this.queue.length = 0;
    this.cancelled = true;
    if (this.end === undefined) this.link.cancel(this.id);
    for (const waiter of this.waiters.splice(0)) {
      if (failure === undefined) waiter.resolve(DONE);
      else waiter.reject(failure);
    }
  }

  /** Ends one read with the stream's end: done, or its error (once; later reads are done). */
  private settleEnd(waiter: Waiter): void {
    const error = this.end?.error;
    if (error === undefined) return waiter.resolve(DONE);
    this.end = {};
    waiter.reject(error);
  }

  /** The consumer took an item: past half a window, the producer gets that much more credit. */
  private took(): void {
    this.taken += 1;
    if (this.end !== undefined || this.taken < Math.max(1, this.window >> 1)) return;
    this.link.credit(this.id, this.taken);
    this.granted += this.taken;
    this.taken = 0;
  }

  private arm(): void {
    if (this.idleTimeoutMs === undefined || this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const cause = new DOMException(`no item within ${this.idleTimeoutMs} ms`, "TimeoutError");
      this.stop(
        new CallAbortedError(`stream ${this.what} timed out: no item within ${this.idleTimeoutMs} ms`, {
          cause,
          timedOut: true,
        }),
      );
    }, this.idleTimeoutMs);
  }

  private disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** A stream that failed before it started (bad arguments, a closed connection): its first read rejects. */
export function failedStream(error: unknown): AsyncIterableIterator<unknown> {
  let thrown = false;
  const iterator: AsyncIterableIterator<unknown> = {
    next: () => {
      if (thrown) return Promise.resolve(DONE);
      thrown = true;
      return Promise.reject(error);
    },
    return: () => {
      thrown = true;
      return Promise.resolve(DONE);
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}

/**
 * `iterator` with `done` called once when it ends: finished, failed, or left (`return()`). A stream never read runs
 * nothing; `done` then runs when it is read or returned.
 */
export function onceDone(iterator: AsyncIterableIterator<unknown>, done: () => void): AsyncIterableIterator<unknown> {
  let called = false;
  const finish = (): void => {
    if (called) return;
    called = true;
    done();
  };
  const wrapped: AsyncIterableIterator<unknown> = {
    next: () =>
      iterator.next().then(
        (step) => {
          if (step.done === true) finish();
          return step;
        },
        (error: unknown) => {
          finish();
          throw error;
        },
      ),
    return: () => {
      finish();
      return iterator.return?.() ?? Promise.resolve(DONE);
    },
    [Symbol.asyncIterator]: () => wrapped,
  };
  return wrapped;
}
