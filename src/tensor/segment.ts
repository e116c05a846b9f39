// A block of tensor memory with counted holders: shared (a memfd or private file, mapped) or plain heap (copy mode).

import { fstatSync } from "node:fs";
import type { NativeAddon } from "./native.js";

/** Where a segment's bytes live: a memfd, an unlinked file in a private folder, or the JS heap (copy mode). */
export type SegmentKind = "memfd" | "file" | "heap";

/**
 * Memory that tensors view. It starts with one holder; `retain()` adds one, `release()` drops one, and the last
 * release closes the fd and unmaps the memory at once: views of it then have length 0 (they never point at
 * freed memory). Holders that are dropped by garbage collection call `release({ gc: true })`, which closes the
 * fd but leaves the mapping to the ArrayBuffer's own finalizer, since a view of it may still be in use.
 * A received segment is mapped on first use of `buffer`: one that is only passed on (host -> A -> B) is never
 * mapped here, which spares V8 an external buffer of its size (and the garbage collection that it starts).
 */
export class Segment {
  readonly kind: SegmentKind;
  readonly size: number;
  #fd: number | undefined;
  #buffer: ArrayBuffer | undefined;
  #holders = 1;
  readonly #native: NativeAddon | undefined;
  #id: number | undefined;
  #onFree: (() => void)[] | undefined;

  /** Internal: use SegmentAllocator. Takes ownership of `fd` and of the mapping `buffer` (undefined: mapped when first used). */
  constructor(kind: SegmentKind, size: number, buffer: ArrayBuffer | undefined, fd?: number, native?: NativeAddon) {
    if (kind !== "heap" && (fd === undefined || native === undefined))
      throw new TypeError(`a ${kind} segment needs its fd`);
    if (kind === "heap" && buffer === undefined) throw new TypeError("a heap segment needs its buffer");
    this.kind = kind;
    this.size = size;
    this.#buffer = buffer;
    this.#fd = fd;
    this.#native = native;
  }

  /** A copy-mode segment over existing heap memory (no copy: `buffer` is adopted). */
  static heap(buffer: ArrayBuffer): Segment {
    return new Segment("heap", buffer.byteLength, buffer);
  }

  get shared(): boolean {
    return this.kind !== "heap";
  }

  get released(): boolean {
    return this.#holders === 0;
  }

  get holders(): number {
    return this.#holders;
  }

  /** The segment's memory. Throws once the last holder released it. */
  get buffer(): ArrayBuffer {
    if (this.#holders === 0) throw new Error("the tensor segment was released");
    this.#buffer ??= this.#native!.mmap(this.#fd!, this.size);
    return this.#buffer;
  }

  /** The descriptor to send to another process (shared segments only); still owned by the segment. */
  get fd(): number {
    if (this.#fd === undefined) {
      throw new Error(this.kind === "heap" ? "a heap segment has no fd" : "the tensor segment was released");
    }
    return this.#fd;
  }

  /**
   * The segment's identity across processes: the inode of its file (every process that maps a memfd sees the
   * same one), or undefined for heap segments. Used to match a segment coming back with the one sent.
   */
  get id(): number | undefined {
    if (this.#id === undefined && this.#fd !== undefined) this.#id = fstatSync(this.#fd).ino;
    return this.#id;
  }

  /** Runs `callback` once, when the last holder releases the segment. */
  onFree(callback: () => void): void {
    if (this.#holders === 0) return callback();
    (this.#onFree ??= []).push(callback);
  }

  retain(): this {
    if (this.#holders === 0) throw new Error("cannot retain a released tensor segment");
    this.#holders += 1;
    return this;
  }

  /** Drops one hold; returns true when that was the last one and the memory is gone. Extra calls do nothing. */
  release(options: { gc?: boolean } = {}): boolean {
    if (this.#holders === 0) return false;
    this.#holders -= 1;
    if (this.#holders > 0) return false;
    const fd = this.#fd;
    const buffer = this.#buffer;
    this.#fd = undefined;
    this.#buffer = undefined;
    if (this.#native !== undefined) {
      if (fd !== undefined) this.#native.closeFd(fd);
      if (buffer !== undefined && !options.gc) this.#native.munmap(buffer);
    }
    const callbacks = this.#onFree ?? [];
    this.#onFree = undefined;
    for (const callback of callbacks) callback();
    return true;
  }

  [Symbol.dispose](): void {
    this.release();
  }
}
