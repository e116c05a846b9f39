// Large bytes as a sealed memfd beside the frame: one copy into it by the sender, one copy out by the receiver.

import { readSync, writeSync } from "node:fs";
import { ProtocolError } from "../errors.js";

/** F_SEAL_SHRINK: the sender cannot cut the file while we read it. */
export const F_SEAL_SHRINK = 0x0002;
/** Bytes are sent as a memfd from this many on, by default (bench/README.md, "Bytes": measured, not guessed). */
export const DEFAULT_BYTES_MEMFD_THRESHOLD = 1024 * 1024;

/** The native calls the memfd path needs (the tensor addon's). */
export interface BytesFdNative {
  memfdCreate(name: string, size: number): number;
  getSeals(fd: number): number | null;
  fstatSize(fd: number): number;
  closeFd(fd: number): void;
}

/** A connection's memfd path for bytes: from `threshold` bytes on, and at most `maxBytes` received per frame. */
export interface BytesFd {
  threshold: number;
  maxBytes: number;
  native: BytesFdNative;
}

/** A memfd holding a copy of `bytes`, sealed against shrinking and growing; the caller owns the fd. */
export function writeMemfd(bytes: Uint8Array, native: BytesFdNative): number {
  const fd = native.memfdCreate("pyisolate-bytes", bytes.byteLength);
  try {
    let done = 0;
    while (done < bytes.byteLength) {
      const n = writeSync(fd, bytes, done, bytes.byteLength - done, done);
      if (n <= 0) throw new Error(`writing bytes into a memfd stopped at ${done} of ${bytes.byteLength}`);
      done += n;
    }
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
 * Reads `size` bytes from a received fd into a fresh buffer (the fd stays the frame's: it is closed with it). The
 * fd must be a memfd sealed against shrinking that holds at least `size` bytes; anything else, or a read that
 * comes up short, is a ProtocolError. Nothing is allocated before those checks pass.
 */
export function readMemfd(fd: number, size: number, native: BytesFdNative): Uint8Array {
  let seals: number | null;
  let actual: number;
  try {
    seals = native.getSeals(fd);
    actual = native.fstatSize(fd);
  } catch (error) {
    throw new ProtocolError(`received bytes fd is unusable: ${(error as Error).message}`, { cause: error });
  }
  if (seals === null || (seals & F_SEAL_SHRINK) === 0) {
    const found = seals === null ? "a file that cannot carry seals" : `seals 0x${seals.toString(16)}`;
    throw new ProtocolError(
      `received bytes fd is not a memfd sealed against shrinking (${found}): only sealed memfds are accepted`,
    );
  }
  if (actual < size) throw new ProtocolError(`received bytes fd holds ${actual} bytes, less than the ${size} declared`);
  const out = Buffer.allocUnsafeSlow(size);
  let done = 0;
  while (done < size) {
    const n = readSync(fd, out, done, size - done, done);
    if (n <= 0) throw new ProtocolError(`received bytes fd ended after ${done} of the ${size} bytes declared`);
    done += n;
  }
  return new Uint8Array(out.buffer, out.byteOffset, size);
}
