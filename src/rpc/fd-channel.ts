// The side channel for file descriptors: a seqpacket socket beside the byte stream (Node's sockets drop SCM_RIGHTS).

import { constants } from "node:os";
import { ProtocolError } from "../errors.js";
import type { FdHold } from "./value-kind.js";

/** The native calls the channel needs (the tensor addon's). */
export interface FdTransport {
  sendFds(socketFd: number, bytes: Uint8Array, fds: readonly number[]): number | null;
  recvFds(
    socketFd: number,
    maxFds: number,
    maxBytes?: number,
  ): { bytes: Buffer; fds: number[]; truncated: boolean } | null;
  closeFd(fd: number): void;
}

/** The kernel's SCM_MAX_FD: more fds than this in one frame travel as several messages. */
export const MAX_FDS_PER_MESSAGE = 253;
const RETRY_FIRST_MS = 1;
const RETRY_MAX_MS = 50;
const { ECONNRESET } = constants.errno;

interface Outgoing {
  fds: number[];
  holds: FdHold[];
  /** fds already sent. */
  sent: number;
  write: () => void;
}

/**
 * One end of the fd socket. Each frame that carries fds is preceded on this socket by messages holding them
 * (the message bytes are the count, in ASCII); the frame's header field `f` says how many to collect. Sends
 * happen before the frame is written, so a receiver that has read a frame always finds its fds waiting. When
 * the socket is full, the frame and every later frame wait (in order) and are retried on a timer.
 */
export class FdChannel {
  readonly fd: number;
  readonly #native: FdTransport;
  readonly #queue: Outgoing[] = [];
  #timer: NodeJS.Timeout | undefined;
  #delay = RETRY_FIRST_MS;
  #closed = false;

  /** Takes ownership of `fd` (non-blocking). */
  constructor(fd: number, native: FdTransport) {
    this.fd = fd;
    this.#native = native;
  }

  /** Frames waiting for the socket to drain. */
  get queued(): number {
    return this.#queue.length;
  }

  /**
   * Sends `fds`, then runs `write` (which writes the frame). `holds` are released once the fds are sent (they
   * were retained by the encoder). Without fds and with nothing queued, `write` runs at once.
   */
  submit(fds: number[], holds: FdHold[], write: () => void): void {
    if (this.#closed) {
      for (const hold of holds) hold.release();
      return;
    }
    this.#queue.push({ fds, holds, sent: 0, write });
    if (this.#queue.length === 1) this.#flush();
  }

  /** Collects the `count` fds announced by a frame just read; throws ProtocolError when they are not there. */
  receive(count: number): number[] {
    const got: number[] = [];
    try {
      while (got.length < count) {
        const message = this.#recv();
        if (message === null || message.bytes.length === 0) {
          throw new ProtocolError(`a frame announced ${count} file descriptors but ${got.length} arrived`);
        }
        got.push(...message.fds);
        if (
          message.truncated ||
          message.bytes.toString("latin1") !== String(message.fds.length) ||
          got.length > count
        ) {
          throw new ProtocolError(`the file descriptors sent with a frame do not match its count of ${count}`);
        }
      }
      return got;
    } catch (error) {
      for (const fd of got) this.#native.closeFd(fd);
      throw error;
    }
  }

  /**
   * One message. A peer that was killed with messages of ours unread leaves ECONNRESET pending on this socket, and
   * Linux reports it once, before the messages already queued for us (the fds of the frames it wrote before it died):
   * read again. Were it reported as a protocol error, a kill would surface as one instead of the crash.
   */
  #recv(): ReturnType<FdTransport["recvFds"]> {
    try {
      return this.#native.recvFds(this.fd, MAX_FDS_PER_MESSAGE, 16);
    } catch (error) {
      if ((error as { errno?: unknown }).errno !== ECONNRESET) throw error;
      return this.#native.recvFds(this.fd, MAX_FDS_PER_MESSAGE, 16);
    }
  }

  /** Closes a descriptor received on this channel. */
  closeReceived(fd: number): void {
    this.#native.closeFd(fd);
  }

  /** Drops queued frames (releasing their holds) and closes the socket. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const entry of this.#queue.splice(0)) for (const hold of entry.holds) hold.release();
    this.#native.closeFd(this.fd);
  }

  #flush = (): void => {
    this.#timer = undefined;
    while (this.#queue.length > 0 && !this.#closed) {
      const entry = this.#queue[0]!;
      try {
        while (entry.sent < entry.fds.length) {
          const part = entry.fds.slice(entry.sent, entry.sent + MAX_FDS_PER_MESSAGE);
          if (this.#native.sendFds(this.fd, Buffer.from(String(part.length), "latin1"), part) === null) {
            this.#timer = setTimeout(this.#flush, this.#delay).unref();
            this.#delay = Math.min(this.#delay * 2, RETRY_MAX_MS);
            return;
          }
          entry.sent += part.length;
        }
      } catch {
        // The other side is gone (EPIPE, ECONNRESET): the frame goes nowhere either; the stream reports the end.
        entry.sent = entry.fds.length;
      }
      this.#delay = RETRY_FIRST_MS;
      this.#queue.shift();
      for (const hold of entry.holds) hold.sent?.();
      for (const hold of entry.holds) hold.release();
      entry.write();
    }
  };
}
