// Large bytes as a sealed memfd beside the frame: one copy into it by the sender; the receiver maps it (no copy).

import { readSync, writeSync } from "node:fs";
import { ProtocolError } from "../errors.js";
import { BytesPool } from "./bytes-pool.js";

/** F_SEAL_SEAL: no seal can be added after it. */
export const F_SEAL_SEAL = 0x0001;
/** F_SEAL_SHRINK: the sender cannot cut the file under our mapping (a SIGBUS). */
export const F_SEAL_SHRINK = 0x0002;
/** F_SEAL_GROW and F_SEAL_WRITE: with F_SEAL_SHRINK, the received bytes can never change (docs/decisions.md). */
export const F_SEAL_GROW = 0x0004;
export const F_SEAL_WRITE = 0x0008;
/** The seals every received bytes memfd must carry. */
export const RECEIVED_BYTES_SEALS = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
/** Bytes are sent as a memfd from this many on, by default (bench/README.md, "Bytes": measured, not guessed). */
export const DEFAULT_BYTES_MEMFD_THRESHOLD = 256 * 1024;

/**
 * Received bytes are mapped from this many on and copied below: each mapping is a VMA until the array is collected,
 * and a process has about 65,000, so a peer sending many small values must not use them up; at 1 MiB that would
 * take 64 GiB of bytes held. A copy of less costs about what mapping it does.
 */
export const MAP_MIN_BYTES = 1024 * 1024;
/** The native calls the memfd path needs (the tensor addon's). */
export interface BytesFdNative {
  memfdCreate(name: string, size: number, sealLater?: boolean): number;
  /** F_ADD_SEALS (an older prebuilt addon lacks it: our memfds then stay writable by us, as before). */
  addSeals?(fd: number, seals: number): void;
  getSeals(fd: number): number | null;
  fstatSize(fd: number): number;
  closeFd(fd: number): void;
  /** A copy-on-write mapping of a memfd sealed against every change (an older prebuilt addon lacks it: we copy). */
  mapSealed?(fd: number, size: number, populate: boolean): ArrayBuffer;
  /** A copy of a file's first bytes, in memory kept from collected copies or fresh (an older addon lacks it). */
  copyOut?(fd: number, size: number): ArrayBuffer;
  /** Frees the memory of collected copies kept this long or longer; returns the bytes still kept. */
  trimCopies?(maxAgeMs: number): number;
  /** A shared read/write mapping and its release (the pool's writes). */
  mmap?(fd: number, size: number): ArrayBuffer;
  munmap?(buffer: ArrayBuffer): boolean;
}

/** A connection's memfd path for bytes: from `threshold` bytes on, and at most `maxBytes` received per frame. */
export interface BytesFd {
  threshold: number;
  maxBytes: number;
  native: BytesFdNative;
  /** The connection's reusable memfds for its calls' bytes (bytes-pool.ts); absent: a fresh memfd per value. */
  pool?: BytesPool;
  /**
   * Takes the number of a memfd the extension lent from its own pool, once its bytes are copied out; the peer
   * hands the numbers back (`release` with `bytes`). Absent: the extension was not told it may lend.
   */
  returnLent?: (lent: number) => void;
}

/** `path` with a pool of its own for one connection (the pool needs `addSeals`, `mmap` and `munmap`). */
export function withPool(path: BytesFd | undefined): BytesFd | undefined {
  const { native } = path ?? {};
  if (
    path === undefined ||
    native?.addSeals === undefined ||
    native.mmap === undefined ||
    native.munmap === undefined
  ) {
    return path;
  }
  const { mmap, munmap } = native;
  return {
    ...path,
    pool: new BytesPool({
      memfdCreate: (name, size, sealLater) => native.memfdCreate(name, size, sealLater),
      addSeals: (fd, seals) => native.addSeals!(fd, seals),
      closeFd: (fd) => native.closeFd(fd),
      mmap: (fd, size) => mmap.call(native, fd, size),
      munmap: (buffer) => munmap.call(native, buffer),
    }),
  };
}

/** A memfd holding a copy of `bytes`, sealed against writing, shrinking and growing; the caller owns the fd. */
export function writeMemfd(bytes: Uint8Array, native: BytesFdNative): number {
  const sealLater = native.addSeals !== undefined;
  const fd = native.memfdCreate("pyisolate-bytes", bytes.byteLength, sealLater);
  try {
    let done = 0;
    while (done < bytes.byteLength) {
      const n = writeSync(fd, bytes, done, bytes.byteLength - done, done);
      if (n <= 0) throw new Error(`writing bytes into a memfd stopped at ${done} of ${bytes.byteLength}`);
      done += n;
    }
    // Written with pwrite, never mapped: nothing stands in the way of the write seal.
    if (sealLater) native.addSeals!(fd, F_SEAL_WRITE | F_SEAL_SEAL);
    return fd;
  } catch (error) {
    native.closeFd(fd);
    throw error;
  }
}

/** What keeps a sent memfd open until the fd channel has passed it on (or dropped the frame): then it is closed. */
export function closeWhenSent(fd: number, native: BytesFdNative): { retain(): void; release(): void } {
  let open = true;
  return {
    retain() {},
    release() {
      if (!open) return;
      open = false;
      native.closeFd(fd);
    },
  };
}

/**
 * `size` bytes of a received fd (the fd stays the frame's: it is closed with it). The fd must be a memfd sealed
 * against writing, shrinking and growing that holds at least `size` bytes; anything else is a ProtocolError, and
 * nothing is allocated before those checks pass. From MAP_MIN_BYTES on the bytes are a private mapping of the memfd
 * (no copy: JS may write to them, which copies the page and never reaches the sender); below it, or where the addon
 * cannot map, a copy.
 */
export function readMemfd(fd: number, size: number, native: BytesFdNative): Uint8Array {
  const { seals, actual } = sealsAndSize(fd, native);
  if (seals === null || (seals & RECEIVED_BYTES_SEALS) !== RECEIVED_BYTES_SEALS) {
    throw new ProtocolError(
      `received bytes fd is not a memfd sealed against writing, shrinking and growing (${sealsText(seals)}): only immutable memfds are accepted`,
    );
  }
  if (actual < size) throw new ProtocolError(`received bytes fd holds ${actual} bytes, less than the ${size} declared`);
  if (native.mapSealed === undefined || size < MAP_MIN_BYTES) return copyMemfd(fd, size);
  try {
    // Not populated: fault-around maps 16 pages per fault, as fast as MAP_POPULATE when every byte is read and
    // free for the bytes never read (bench/README.md, "Bytes").
    return new Uint8Array(native.mapSealed(fd, size, false));
  } catch (error) {
    if ((error as { code?: unknown }).code === "ERR_PYISOLATE_NO_EXTERNAL_BUFFERS") return copyMemfd(fd, size);
    throw new ProtocolError(`received bytes fd cannot be mapped: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * From this many bytes on, a lent memfd is copied by the addon's copyOut: into memory it keeps from collected
 * copies for the next ones (fresh memory costs its page faults and zeroing, more than the copy itself here; large
 * ones in huge pages). Below, into a Buffer from the heap (bench/README.md, "Bytes").
 */
export const COPY_OUT_MIN = 1024 * 1024;
/** The seal every lent memfd carries: its size cannot drop under a read. */
const LENT_BYTES_SEALS = F_SEAL_SHRINK;

/**
 * A copy of the first `size` bytes of a memfd the extension lent from its pool: it writes that memfd again once
 * we hand it back, so it is never mapped, only read (a write racing the read changes only what we read, as any
 * other bytes it could have sent). The fd must be a memfd sealed against shrinking that holds `size` bytes;
 * anything else is a ProtocolError, checked before anything is allocated.
 */
export function readLentMemfd(fd: number, size: number, native: BytesFdNative): Uint8Array {
  const { seals, actual } = sealsAndSize(fd, native);
  if (seals === null || (seals & LENT_BYTES_SEALS) !== LENT_BYTES_SEALS) {
    throw new ProtocolError(`lent bytes fd is not a memfd sealed against shrinking (${sealsText(seals)})`);
  }
  if (actual < size) throw new ProtocolError(`lent bytes fd holds ${actual} bytes, less than the ${size} declared`);
  if (native.copyOut === undefined || size < COPY_OUT_MIN) return copyMemfd(fd, size);
  try {
    const copy = new Uint8Array(native.copyOut(fd, size));
    trimCopiesWhenIdle(native);
    return copy;
  } catch (error) {
    if ((error as { code?: unknown }).code === "ERR_PYISOLATE_NO_EXTERNAL_BUFFERS") return copyMemfd(fd, size);
    throw new ProtocolError(`lent bytes fd cannot be read: ${(error as Error).message}`, { cause: error });
  }
}

/** The addon keeps the memory of collected copies for the next ones this long: a burst reuses it, an idle host
 * holds none. */
export const COPY_CACHE_IDLE_MS = 1000;
let trimTimer: NodeJS.Timeout | undefined;

/** Frees the addon's kept copies once none came for COPY_CACHE_IDLE_MS (checking again while any are kept). */
function trimCopiesWhenIdle(native: BytesFdNative): void {
  if (trimTimer !== undefined || native.trimCopies === undefined) return;
  trimTimer = setTimeout(() => {
    trimTimer = undefined;
    if (native.trimCopies!(COPY_CACHE_IDLE_MS) > 0) trimCopiesWhenIdle(native);
  }, COPY_CACHE_IDLE_MS);
  trimTimer.unref();
}

/** A received fd's seals (null: it cannot carry any) and size; a ProtocolError when it has neither (not a file). */
function sealsAndSize(fd: number, native: BytesFdNative): { seals: number | null; actual: number } {
  try {
    return { seals: native.getSeals(fd), actual: native.fstatSize(fd) };
  } catch (error) {
    throw new ProtocolError(`received bytes fd is unusable: ${(error as Error).message}`, { cause: error });
  }
}

function sealsText(seals: number | null): string {
  return seals === null ? "a file that cannot carry seals" : `seals 0x${seals.toString(16)}`;
}

/** A copy of the first `size` bytes of `fd` in a fresh buffer; a short read is a ProtocolError. */
function copyMemfd(fd: number, size: number): Uint8Array {
  const out = Buffer.allocUnsafeSlow(size);
  let done = 0;
  while (done < size) {
    const n = readSync(fd, out, done, size - done, done);
    if (n <= 0) throw new ProtocolError(`received bytes fd ended after ${done} of the ${size} bytes declared`);
    done += n;
  }
  return new Uint8Array(out.buffer, out.byteOffset, size);
}
