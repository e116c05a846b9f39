// The host's book of shared segments: which ones are live, how big, and who holds them (the host, extensions).

import type { Segment } from "./segment.js";

/** The holder name the host itself uses. */
export const HOST_HOLDER = "host";

/** One live segment as `liveSegments()` reports it. */
export interface SegmentRecord {
  /** The segment's inode: the same in every process that holds it. */
  id: number;
  bytes: number;
  /** "host" and the names of the extensions that hold a mapping of it. */
  holders: string[];
}

interface Entry {
  bytes: number;
  holders: Set<string>;
  /** The host's own mapping, reused when the segment comes back. */
  segment: WeakRef<Segment> | undefined;
}

/**
 * Bookkeeping only: the kernel frees a segment when the last process holding it closes it or dies, whatever this
 * book says. It records a holder when a segment crosses to or from it, and forgets one on its `release` message
 * (garbage collection on its side), on its death, or, for the host, when its Segment is freed.
 */
export class SegmentLedger {
  readonly #entries = new Map<number, Entry>();

  /** Records that `holder` holds `segment` (a shared one); the host is recorded too while the Segment lives. */
  hold(segment: Segment, holder: string): void {
    const id = segment.id;
    if (id === undefined) return;
    let entry = this.#entries.get(id);
    if (entry === undefined) {
      entry = { bytes: segment.size, holders: new Set(), segment: undefined };
      this.#entries.set(id, entry);
    }
    if (entry.segment?.deref() !== segment && !segment.released) {
      entry.segment = new WeakRef(segment);
      entry.holders.add(HOST_HOLDER);
      segment.onFree(() => this.#drop(id, HOST_HOLDER, segment));
    }
    entry.holders.add(holder);
  }

  /** The host's live Segment for inode `id`, if it still has one. */
  find(id: number): Segment | undefined {
    const segment = this.#entries.get(id)?.segment?.deref();
    return segment === undefined || segment.released ? undefined : segment;
  }

  /** `holder` released these segments. */
  release(holder: string, ids: readonly number[]): void {
    for (const id of ids) this.#drop(id, holder);
  }

  /** `holder` is gone (its process ended): it holds nothing any more. */
  forget(holder: string): void {
    for (const id of [...this.#entries.keys()]) this.#drop(id, holder);
  }

  /** A snapshot of every live segment and its holders. */
  list(): SegmentRecord[] {
    return [...this.#entries].map(([id, entry]) => ({ id, bytes: entry.bytes, holders: [...entry.holders].sort() }));
  }

  #drop(id: number, holder: string, segment?: Segment): void {
    const entry = this.#entries.get(id);
    if (entry === undefined) return;
    if (segment !== undefined && entry.segment?.deref() !== segment) return; // an older mapping of it went
    entry.holders.delete(holder);
    if (holder === HOST_HOLDER) entry.segment = undefined;
    if (entry.holders.size === 0) this.#entries.delete(id);
  }
}

/** The book of this host process. */
export const segmentLedger = new SegmentLedger();

/** Every shared segment the host knows to be live, with its holders. */
export function liveSegments(): SegmentRecord[] {
  return segmentLedger.list();
}
