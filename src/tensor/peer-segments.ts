// One connection's book of the segments its extension holds, so that they cross again by id: no fd, no mapping.

import { close as closeInBackground } from "node:fs";
import { ProtocolError } from "../errors.js";
import type { FdHold } from "../rpc/value-kind.js";
import { DEFAULT_LIMITS, overLimit, type ProtocolLimits } from "../rpc/limits.js";
import type { ShmStorage } from "./descriptor.js";
import type { NativeAddon } from "./native.js";
import { Segment, type SegmentKind } from "./segment.js";

/**
 * How long the extension keeps a segment after our last holder of it went, before we tell it to let go: a
 * tensor passed on again soon (A returns the same one each call, the host hands it to B) still crosses by id.
 */
export const KEEP_AFTER_FREE_MS = 20;

interface Entry {
  /** Our own descriptor of the file (checked when it first came), so that an id can be mapped after our Segment went. */
  fd: number;
  kind: SegmentKind;
  size: number;
  /** Our live mapping of it, if any. */
  segment: WeakRef<Segment> | undefined;
  /** The extension keeps it mapped until told otherwise (see below): it may travel by id both ways. */
  kept: boolean;
  /** The tick of the last `release` we sent for it. */
  releasedAt: number;
}

/**
 * The protocol (docs/protocol.md, Tensors): a segment that crossed the connection, either way, is kept mapped by
 * the extension until the host sends `release` with its id, which it does when its own last holder of the
 * segment goes. While kept, it travels by `id` alone. The extension answers with its own `release` once its last
 * array over it is gone; until then an id it sends is accepted, even after ours went out (the two crossed), which
 * is why an entry keeps an fd of the file. An id that names no entry of this connection is a ProtocolError: an
 * extension cannot reach another one's segments, nor ours that it was never given.
 */
export class PeerSegments {
  readonly #entries = new Map<number, Entry>();
  readonly #native: NativeAddon;
  readonly #hooked = new WeakSet<Segment>();
  #tick = 0;
  /** Kept segments whose host holders all went, told to the extension after KEEP_AFTER_FREE_MS. */
  readonly #idle = new Set<number>();
  #timer: NodeJS.Timeout | undefined;
  #send: ((ids: number[]) => void) | undefined;
  #closed = false;
  /** Bytes of the segments in the book (each entry pins a host fd of that file). */
  #bytes = 0;
  readonly #limits: Pick<ProtocolLimits, "maxSegments" | "maxSegmentBytes">;

  constructor(native: NativeAddon, limits: Partial<Pick<ProtocolLimits, "maxSegments" | "maxSegmentBytes">> = {}) {
    this.#native = native;
    this.#limits = {
      maxSegments: limits.maxSegments ?? DEFAULT_LIMITS.maxSegments,
      maxSegmentBytes: limits.maxSegmentBytes ?? DEFAULT_LIMITS.maxSegmentBytes,
    };
  }

  /** Where `release` messages go (the peer's link). */
  bind(send: (ids: number[]) => void): void {
    this.#send = send;
  }

  /** How many segments the extension may name by id now (for tests). */
  get size(): number {
    return this.#entries.size;
  }

  /** Their bytes, added up. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * The storage for sending `segment`: by id when the extension keeps it, else by fd (`addFd` is the frame's),
   * the entry being made once the fd has actually gone out.
   */
  storage(segment: Segment, addFd: (fd: number, hold: FdHold) => number): ShmStorage {
    const id = segment.id!;
    const entry = this.#entries.get(id);
    if (entry?.kept && entry.size >= segment.size) {
      this.#track(entry, id, segment);
      return { kind: "shm", size: segment.size, id };
    }
    const tick = this.#tick;
    const hold: FdHold = {
      retain: () => segment.retain(),
      release: () => segment.release(),
      sent: () => this.#sent(segment, id, tick),
    };
    return { kind: "shm", fd: addFd(segment.fd, hold), size: segment.size, id };
  }

  /**
   * The extension sent `segment` by fd: it keeps it now. A segment new to the book must fit the limits
   * maxSegments and maxSegmentBytes (an extension that never releases cannot pin host fds without end); past them
   * this throws ProtocolError.
   */
  received(segment: Segment): void {
    const id = segment.id;
    if (id === undefined || this.#closed) return;
    if (!this.#entries.has(id)) {
      const { maxSegments, maxSegmentBytes } = this.#limits;
      if (this.#entries.size >= maxSegments)
        throw overLimit("maxSegments", "segments held by the extension", this.#entries.size + 1, maxSegments);
      if (this.#bytes + segment.size > maxSegmentBytes) {
        throw overLimit(
          "maxSegmentBytes",
          "bytes of segments held by the extension",
          this.#bytes + segment.size,
          maxSegmentBytes,
        );
      }
    }
    const entry = this.#entry(id, segment);
    entry.kept = true;
    this.#track(entry, id, segment);
  }

  /** The segment the extension named by `id` (with one hold for the caller); ProtocolError when it holds none. */
  resolve(id: number, size: number): Segment {
    const entry = this.#entries.get(id);
    if (entry === undefined)
      throw new ProtocolError(`a tensor names segment ${id}, which this extension was never given or released`);
    if (size > entry.size)
      throw new ProtocolError(`a tensor declares ${size} bytes of segment ${id}, which holds ${entry.size}`);
    const live = entry.segment?.deref();
    if (live !== undefined && !live.released) return live.retain();
    // Mapped when its data is first read; the fd was checked (sealed, large enough) when it first came.
    const segment = new Segment(entry.kind, entry.size, undefined, this.#native.dupFd(entry.fd), this.#native);
    this.#track(entry, id, segment);
    return segment;
  }

  /**
   * The extension released these (its last array over each went). Returns the ids it really let go: one we sent
   * again by fd after our `release` is kept again, and its release is stale.
   */
  released(ids: readonly number[]): number[] {
    const gone: number[] = [];
    for (const id of ids) {
      const entry = this.#entries.get(id);
      if (entry?.kept) continue;
      if (entry !== undefined) {
        this.#entries.delete(id);
        this.#bytes -= entry.size;
        closeQuietly(entry.fd);
      }
      gone.push(id);
    }
    return gone;
  }

  /** The connection ended: close every fd. Idempotent. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const entry of this.#entries.values()) closeQuietly(entry.fd);
    this.#entries.clear();
    this.#bytes = 0;
    this.#idle.clear();
  }

  #entry(id: number, segment: Segment): Entry {
    let entry = this.#entries.get(id);
    if (entry === undefined) {
      entry = {
        fd: this.#native.dupFd(segment.fd),
        kind: segment.kind,
        size: segment.size,
        segment: undefined,
        kept: false,
        releasedAt: 0,
      };
      this.#entries.set(id, entry);
      this.#bytes += entry.size;
    }
    return entry;
  }

  /** The fd of `segment`, chosen at tick `tick`, went out: the extension keeps it, unless we released it since. */
  #sent(segment: Segment, id: number, tick: number): void {
    if (this.#closed) return;
    const entry = this.#entry(id, segment);
    if (entry.releasedAt > tick) return; // our release follows this frame on the wire
    entry.kept = true;
    this.#track(entry, id, segment);
  }

  #track(entry: Entry, id: number, segment: Segment): void {
    if (entry.segment?.deref() !== segment) entry.segment = new WeakRef(segment);
    if (this.#hooked.has(segment)) return;
    this.#hooked.add(segment);
    segment.onFree(() => this.#freed(id, segment));
  }

  /** Our last holder of `segment` went: soon the extension need not keep it for us any more. */
  #freed(id: number, segment: Segment): void {
    const entry = this.#entries.get(id);
    if (entry === undefined || entry.segment?.deref() !== segment) return;
    entry.segment = undefined;
    if (!entry.kept || this.#closed) return;
    this.#idle.add(id);
    this.#timer ??= setTimeout(() => this.flushReleases(), KEEP_AFTER_FREE_MS).unref();
  }

  /** Tells the extension now to let go of the kept segments we hold no more (it runs on a timer by itself). */
  flushReleases(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const ids: number[] = [];
    for (const id of this.#idle) {
      const entry = this.#entries.get(id);
      const live = entry?.segment?.deref();
      if (entry === undefined || !entry.kept || (live !== undefined && !live.released)) continue; // ours again
      entry.kept = false;
      entry.releasedAt = ++this.#tick;
      ids.push(id);
    }
    this.#idle.clear();
    if (ids.length > 0 && !this.#closed) this.#send?.(ids);
  }
}

/**
 * Closes an fd on libuv's thread pool: when it is the last reference to a segment, close() frees its pages
 * there (about 100 ms for 800 MB of touched memory), not in the middle of whatever call is running.
 */
function closeQuietly(fd: number): void {
  closeInBackground(fd, () => {});
}
