// Callables across the wire: the export table (our functions by id) and proxies of the other side's.

import { inspect } from "node:util";
import { startCallerTracking } from "../caller.js";
import type { StreamSource } from "./stream-producer.js";
import type { AnyFunction } from "./value-kind.js";

/**
 * Export and import tables of one connection. Every export gets a fresh id (never reused), so a `release`
 * for an id can never race with a new send of the same function. Proxies are cached per id and, once
 * garbage-collected, reported through `onReleased` in batches (one `release` message per batch).
 */
export class CallableTables {
  private readonly exported = new Map<number, AnyFunction>();
  /** Iterables sent as `$iter`, until the other side streams them (once) or releases them. */
  private readonly streams = new Map<number, StreamSource>();
  private nextId = 1;
  private readonly imported = new Map<number, WeakRef<AnyFunction>>();
  private readonly registry: FinalizationRegistry<number>;
  private releaseQueue: number[] = [];
  private closed = false;

  constructor(
    private readonly callRemote: (fnId: number, args: unknown[]) => Promise<unknown>,
    private readonly onReleased: (ids: number[]) => void,
  ) {
    this.registry = new FinalizationRegistry((id) => this.collected(id));
  }

  get exportedCount(): number {
    return this.exported.size + this.streams.size;
  }

  get importedCount(): number {
    return this.imported.size;
  }

  /** Next id that `exportFn` will hand out (lets a caller roll back exports of a failed encode). */
  get mark(): number {
    return this.nextId;
  }

  exportFn(fn: AnyFunction): number {
    startCallerTracking(); // before the call back can come (caller.ts)
    const id = this.nextId++;
    this.exported.set(id, fn);
    return id;
  }

  exportStream(source: StreamSource): number {
    startCallerTracking();
    const id = this.nextId++;
    this.streams.set(id, source);
    return id;
  }

  /** The iterable exported as `id`, forgotten here: an iterable is streamed once. Undefined when there is none. */
  takeStream(id: number): StreamSource | undefined {
    const source = this.streams.get(id);
    this.streams.delete(id);
    return source;
  }

  /** The exported function `id`, or undefined when it was released or never existed. */
  lookup(id: number): AnyFunction | undefined {
    return this.exported.get(id);
  }

  /** Forgets exports (after `release` from the other side, or a failed encode). */
  release(ids: Iterable<number>): void {
    for (const id of ids) {
      this.exported.delete(id);
      this.streams.delete(id);
    }
  }

  /** Drops every export made since `mark`. */
  rollback(mark: number): void {
    for (let id = mark; id < this.nextId; id++) {
      this.exported.delete(id);
      this.streams.delete(id);
    }
  }

  importFn(id: number): AnyFunction {
    const cached = this.imported.get(id)?.deref();
    if (cached !== undefined) return cached;
    const callRemote = this.callRemote;
    const proxy: AnyFunction = (...args) => callRemote(id, args);
    Object.defineProperty(proxy, "name", { value: `remoteCallable${id}` });
    // A plain function already keeps every probe local (no `then`, JSON.stringify skips it); this names it too.
    const label = `[remote callable ${id}]`;
    Object.defineProperty(proxy, "toString", { value: () => label });
    Object.defineProperty(proxy, inspect.custom, { value: () => label });
    this.imported.set(id, new WeakRef(proxy));
    this.registry.register(proxy, id);
    return proxy;
  }

  clear(): void {
    this.closed = true;
    this.exported.clear();
    this.streams.clear();
    this.imported.clear();
    this.releaseQueue = [];
  }

  private collected(id: number): void {
    if (this.closed) return;
    const ref = this.imported.get(id);
    // A newer proxy for the same id may have replaced the collected one: it still needs the export.
    if (ref === undefined || ref.deref() !== undefined) return;
    this.imported.delete(id);
    if (this.releaseQueue.push(id) === 1) setImmediate(() => this.flush()).unref();
  }

  private flush(): void {
    const ids = this.releaseQueue;
    this.releaseQueue = [];
    if (!this.closed && ids.length > 0) this.onReleased(ids);
  }
}
