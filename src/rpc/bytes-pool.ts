// One connection's reusable memfds for the bytes of its calls: written again, never freshly allocated, per call.

import { writeSync } from "node:fs";

/** The native calls a pool needs (the tensor addon's). */
export interface BytesPoolNative {
  memfdCreate(name: string, size: number, sealLater?: boolean): number;
  addSeals?(fd: number, seals: number): void;
  closeFd(fd: number): void;
  mmap(fd: number, size: number): ArrayBuffer;
  munmap(buffer: ArrayBuffer): boolean;
}

/** What one connection's pool may hold: its memfds' sizes added up, and how many (each is an fd and a mapping). */
export const POOL_MAX_BYTES = 256 * 1024 * 1024;
export const POOL_MAX_ENTRIES = 8;
/** A memfd nobody used for this long is closed: the pool serves bursts, and idle hosts hold nothing. */
export const POOL_IDLE_MS = 1000;
/** F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL: the size is fixed and the extension cannot add F_SEAL_WRITE. */
const POOL_SEALS = 0x0002 | 0x0004 | 0x0001;

/** What keeps a lent fd until the fd channel has sent it: value-kind.ts's FdHold (not imported: no cycle). */
export interface LoanHold {
  retain(): void;
  sent(): void;
  release(): void;
}

/** One reusable memfd: its fd, its size, and (from its second use on) our shared mapping of it. */
interface Entry {
  fd: number;
  capacity: number;
  uses: number;
  view: Uint8Array | undefined;
  idleSince: number;
}

/**
 * A lent memfd travelling with one call: back to the pool when the call is answered (the guest read its arguments
 * before it could answer), closed when the call is abandoned (the guest may still read it), back at once when the
 * frame was never sent.
 */
class Loan implements LoanHold {
  private wasSent = false;
  private outcome: "pending" | "return" | "discard" = "pending";
  private released = false;
  constructor(
    private readonly pool: BytesPool,
    readonly entry: Entry,
    readonly callId: number,
  ) {}
  retain(): void {}
  sent(): void {
    this.wasSent = true;
  }
  release(): void {
    this.released = true;
    if (!this.wasSent) return this.pool.settle(this, "return");
    if (this.outcome !== "pending") this.pool.settle(this, this.outcome);
  }
  /** The call was answered (`return`) or abandoned (`discard`): done now when the fd has gone, else at release. */
  end(outcome: "return" | "discard"): void {
    if (this.outcome !== "pending") return;
    this.outcome = outcome;
    if (this.released) this.pool.settle(this, outcome);
  }
}

/**
 * The memfds one connection lends to its calls' large bytes. Each is sealed against shrinking, growing and new
 * seals but not against writing (so it can be written again): it only ever carries this connection's own
 * arguments to the extension that already holds it, and the host never reads it. The extension copies the bytes
 * out as it decodes the call, before it can answer it (docs/protocol.md#bytes).
 */
export class BytesPool {
  private readonly free: Entry[] = [];
  private readonly loans = new Map<number, Loan[]>();
  private heldBytes = 0;
  private entries = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly native: BytesPoolNative) {}

  /**
   * A memfd holding `bytes` lent to call `callId`, with the hold that brings it back, or undefined when the pool is
   * full (the caller then makes a fresh sealed memfd).
   */
  lend(bytes: Uint8Array, callId: number): { fd: number; hold: LoanHold } | undefined {
    if (this.closed) return undefined;
    const entry = this.take(bytes.byteLength);
    if (entry === undefined) return undefined;
    try {
      write(entry, bytes, this.native);
    } catch (error) {
      this.discard(entry);
      throw error;
    }
    const loan = new Loan(this, entry, callId);
    const list = this.loans.get(callId);
    if (list === undefined) this.loans.set(callId, [loan]);
    else list.push(loan);
    return { fd: entry.fd, hold: loan };
  }

  /** Call `callId` was answered: its memfds may carry the next call's bytes. */
  answered(callId: number): void {
    this.endLoans(callId, "return");
  }

  /** Call `callId` was abandoned (timeout, abort): the extension may read its memfds later, so they go. */
  abandoned(callId: number): void {
    this.endLoans(callId, "discard");
  }

  /** Closes every memfd not out on a call now, and the rest as they come back. Idempotent. */
  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    for (const entry of this.free.splice(0)) this.discard(entry);
    for (const loans of [...this.loans.values()]) for (const loan of loans) loan.end("discard");
  }

  /** Memfds held now, and their sizes added up (for tests and the bench). */
  get stats(): { entries: number; bytes: number; free: number } {
    return { entries: this.entries, bytes: this.heldBytes, free: this.free.length };
  }

  /** A loan ends: its memfd goes back to the free list or is closed. */
  settle(loan: Loan, outcome: "return" | "discard"): void {
    const loans = this.loans.get(loan.callId);
    const at = loans?.indexOf(loan) ?? -1;
    if (at < 0) return; // settled already
    loans!.splice(at, 1);
    if (loans!.length === 0) this.loans.delete(loan.callId);
    if (outcome === "discard" || this.closed) return this.discard(loan.entry);
    loan.entry.idleSince = performance.now();
    this.free.push(loan.entry);
    this.armTrim();
  }

  private endLoans(callId: number, outcome: "return" | "discard"): void {
    const loans = this.loans.get(callId);
    if (loans !== undefined) for (const loan of [...loans]) loan.end(outcome);
  }

  /** The smallest free memfd that fits, else a new one while the pool has room. */
  private take(size: number): Entry | undefined {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const capacity = this.free[i]!.capacity;
      if (capacity >= size && (best < 0 || capacity < this.free[best]!.capacity)) best = i;
    }
    if (best >= 0) return this.free.splice(best, 1)[0];
    const capacity = capacityFor(size);
    if (this.native.addSeals === undefined || this.entries >= POOL_MAX_ENTRIES) return undefined;
    if (this.heldBytes + capacity > POOL_MAX_BYTES) return undefined;
    const fd = this.native.memfdCreate("pyisolate-bytes-pool", capacity, true);
    try {
      this.native.addSeals(fd, POOL_SEALS);
    } catch (error) {
      this.native.closeFd(fd);
      throw error;
    }
    this.entries++;
    this.heldBytes += capacity;
    return { fd, capacity, uses: 0, view: undefined, idleSince: 0 };
  }

  private discard(entry: Entry): void {
    this.entries--;
    this.heldBytes -= entry.capacity;
    if (entry.view !== undefined) this.native.munmap(entry.view.buffer as ArrayBuffer);
    entry.view = undefined;
    this.native.closeFd(entry.fd);
  }

  /** Closes the memfds idle for POOL_IDLE_MS, checking again when the first of those left will have been. */
  private armTrim(delay = POOL_IDLE_MS): void {
    if (this.timer !== undefined || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const now = performance.now();
      for (let i = this.free.length - 1; i >= 0; i--) {
        if (now - this.free[i]!.idleSince >= POOL_IDLE_MS) this.discard(this.free.splice(i, 1)[0]!);
      }
      if (this.free.length > 0) {
        const oldest = Math.min(...this.free.map((entry) => entry.idleSince));
        this.armTrim(Math.max(1, POOL_IDLE_MS - (now - oldest)));
      }
    }, delay);
    this.timer.unref();
  }
}

/**
 * Writes `bytes` at offset 0. The first use writes with pwrite (the pages are allocated either way, and a first write
 * through a mapping also faults each page into it: twice the time); from the second on through our mapping, a plain
 * memory copy (about 7 ms for 50 MB here, against 14 to 18 ms for pwrite; bench/README.md, "Bytes").
 */
function write(entry: Entry, bytes: Uint8Array, native: BytesPoolNative): void {
  if (entry.uses++ === 0) {
    let done = 0;
    while (done < bytes.byteLength) {
      const n = writeSync(entry.fd, bytes, done, bytes.byteLength - done, done);
      if (n <= 0) throw new Error(`writing bytes into a memfd stopped at ${done} of ${bytes.byteLength}`);
      done += n;
    }
    return;
  }
  entry.view ??= new Uint8Array(native.mmap(entry.fd, entry.capacity));
  entry.view.set(bytes);
}

/** Sizes round up to a power of two (at least 64 KiB): unwritten pages of a memfd cost nothing, and a pool entry
 * then fits every value up to twice the size it was made for. */
function capacityFor(size: number): number {
  let capacity = 64 * 1024;
  while (capacity < size) capacity *= 2;
  return capacity;
}
