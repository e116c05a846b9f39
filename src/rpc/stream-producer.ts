// Stream calls the other side made on us: each runs a JS (async) iterable within the credit its caller grants.

import { ProtocolError } from "../errors.js";
import { MAX_STREAM_WINDOW } from "./protocol.js";

/** What the producers need from their peer. */
export interface ProducerContext {
  /** Sends one item of stream `id`; throws (TypeError) when the value cannot be sent. */
  item(id: number, value: unknown): void;
  /** Ends stream `id`: `result` (no error) or `error`. */
  end(id: number, error?: unknown): void;
  /** Bytes written and not yet flushed to the socket. */
  backlog(): number;
  /** Calls `wake` once the socket drained. */
  whenDrained(wake: () => void): void;
}

/** Past this many unflushed bytes a producer waits for the socket to drain (a guest that does not read). */
const BACKLOG_LIMIT = 1024 * 1024;

/** A JavaScript value that can be streamed: an async iterable, or a generator object. */
export type StreamSource = AsyncIterable<unknown> | Iterator<unknown>;

export function isStreamSource(value: object): value is StreamSource {
  if (typeof (value as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] === "function") return true;
  return Object.prototype.toString.call(value) === "[object Generator]";
}

function iteratorOf(source: StreamSource): AsyncIterator<unknown> | Iterator<unknown> {
  const asyncIterable = source as Partial<AsyncIterable<unknown>>;
  return typeof asyncIterable[Symbol.asyncIterator] === "function"
    ? asyncIterable[Symbol.asyncIterator]!()
    : (source as Iterator<unknown>);
}

class Producer {
  credit: number;
  cancelled = false;
  private wake: (() => void) | undefined;

  constructor(
    readonly id: number,
    window: number,
  ) {
    this.credit = window;
  }

  sleep(): Promise<void> {
    return new Promise((resolve) => (this.wake = resolve));
  }

  rouse(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

/**
 * The running producers of one connection, by call id. A producer takes the next item only while it holds credit
 * and the socket is not backed up; `cancel` closes its iterator (`return()`) and the stream ends with a
 * CancelledError, so the caller always hears one end per stream.
 */
export class OutgoingStreams {
  private readonly running = new Map<number, Producer>();

  constructor(private readonly context: ProducerContext) {}

  get size(): number {
    return this.running.size;
  }

  /** Runs stream `id` on `source`, or on what a promise of one resolves to (a cancel meanwhile still closes that). */
  start(id: number, source: StreamSource | Promise<StreamSource>, window: number): void {
    const producer = new Producer(id, window);
    this.running.set(id, producer);
    void this.run(producer, source);
  }

  /** More credit for stream `id`; one that already ended (the credit crossed its end) is ignored. */
  credit(id: number, n: number): void {
    const producer = this.running.get(id);
    if (producer === undefined) return;
    producer.credit += n;
    if (producer.credit > MAX_STREAM_WINDOW) {
      throw new ProtocolError(
        `credit ${id}: ${producer.credit} items outstanding exceeds the most a stream may hold, ${MAX_STREAM_WINDOW}`,
      );
    }
    producer.rouse();
  }

  cancel(id: number): void {
    const producer = this.running.get(id);
    if (producer === undefined) return;
    producer.cancelled = true;
    producer.rouse();
  }

  /** The connection closed: every producer stops at its next step and closes its iterator, sending nothing. */
  clear(): void {
    const producers = [...this.running.values()];
    this.running.clear();
    for (const producer of producers) {
      producer.cancelled = true;
      producer.rouse();
    }
  }

  private async run(producer: Producer, source: StreamSource | Promise<StreamSource>): Promise<void> {
    let iterator: AsyncIterator<unknown> | Iterator<unknown> | undefined;
    let failure: unknown;
    let finished = false;
    try {
      iterator = iteratorOf(source instanceof Promise ? await source : source);
      while (!producer.cancelled) {
        if (producer.credit === 0) {
          await producer.sleep();
          continue;
        }
        if (this.context.backlog() > BACKLOG_LIMIT) {
          const waiting = producer.sleep();
          this.context.whenDrained(() => producer.rouse());
          await waiting;
          continue;
        }
        const step = await iterator.next();
        if (producer.cancelled) break;
        if (step.done === true) {
          finished = true;
          break;
        }
        producer.credit -= 1;
        this.context.item(producer.id, step.value);
      }
    } catch (err) {
      failure = err;
    }
    if (!finished && iterator !== undefined) {
      try {
        await iterator.return?.();
      } catch {
        // the stream already ends with its own reason
      }
    }
    if (this.running.get(producer.id) !== producer) return; // the connection closed
    this.running.delete(producer.id);
    if (producer.cancelled && failure === undefined) {
      const cancelled = new Error("the stream was cancelled by its consumer");
      cancelled.name = "CancelledError";
      failure = cancelled;
    }
    this.context.end(producer.id, failure);
  }
}
