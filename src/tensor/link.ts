// Per-extension tensor plumbing: the fd socket pair, the codec for the connection, and the ledger holder name.

import { ConfigError } from "../errors.js";
import { DEFAULT_BYTES_MEMFD_THRESHOLD, type BytesFd } from "../rpc/bytes-fd.js";
import { FdChannel } from "../rpc/fd-channel.js";
import { DEFAULT_LIMITS, type ProtocolLimits } from "../rpc/limits.js";
import type { ReleaseMessage } from "../rpc/protocol.js";
import type { KindRelease, ValueKind } from "../rpc/value-kind.js";
import { tensorCodec, type TensorTransport } from "./codec.js";
import { cudaLedger, type CudaPeer } from "./cuda-ledger.js";
import { segmentLedger } from "./ledger.js";
import { nativeStatus, warnCopyFallback } from "./native.js";
import { PeerSegments } from "./peer-segments.js";

import type { TensorTransportOption } from "../vocabulary.js";
export type { TensorTransportOption };

/** The fd number of the tensor socket in the extension process. */
export const GUEST_FD_CHANNEL = 4;

/** The `tensors` field of the init message: how the guest sends and receives tensors. */
export interface TensorInit {
  transport: TensorTransport;
  /** The guest's fd of the fd socket (shm only). */
  fd?: number;
  /** Bytes of this many or more go as a sealed memfd on that socket (shm only; absent: never). */
  bytesFd?: number;
  /** The host copies out the memfds the guest lends from its pool and hands them back (docs/protocol.md#bytes). */
  bytesReturn?: true;
}

/** One extension's tensor link. Make it before the spawn, call `spawned()` right after. */
export class TensorLink implements CudaPeer {
  readonly transport: TensorTransport;
  /** Why this transport (for logs and doctor). */
  readonly reason: string;
  readonly channel: FdChannel | undefined;
  /** The segments the extension keeps for us (shm only): they travel by id. */
  readonly segments: PeerSegments | undefined;
  #childFd: number | undefined;
  #holder = "extension";
  #send: ((fields: KindRelease) => void) | undefined;
  readonly #bytesThreshold: number;
  readonly #maxFrameBytes: number;
  /** Set when CUDA tensors are refused on this link (the TCP transport): the reason given. */
  readonly #cudaRefusal: string | undefined;

  /**
   * `bytesThreshold`: from this many bytes on, bytes cross as a memfd where the fd socket exists (shm).
   * `refuseCuda`: CUDA tensors cannot cross (no CUDA IPC across machines); the text says why, for the TypeError.
   */
  constructor(
    option: TensorTransportOption = "auto",
    name = "extension",
    limits: Partial<Pick<ProtocolLimits, "maxSegments" | "maxSegmentBytes" | "maxFrameBytes">> = {},
    bytesThreshold = DEFAULT_BYTES_MEMFD_THRESHOLD,
    refuseCuda?: string,
  ) {
    this.#holder = name;
    this.#bytesThreshold = bytesThreshold;
    this.#maxFrameBytes = limits.maxFrameBytes ?? DEFAULT_LIMITS.maxFrameBytes;
    this.#cudaRefusal = refuseCuda;
    if (option === "copy") {
      this.transport = "copy";
      this.reason = 'tensorTransport is "copy"';
      this.channel = undefined;
      this.segments = undefined;
      return;
    }
    if (!nativeStatus.available) {
      if (option === "shm") {
        throw new ConfigError(
          `extension "${name}": tensorTransport "shm" needs the native addon: ${nativeStatus.reason}`,
          { key: "tensorTransport" },
        );
      }
      warnCopyFallback(nativeStatus);
      this.transport = "copy";
      this.reason = `copying: ${nativeStatus.reason}`;
      this.channel = undefined;
      this.segments = undefined;
      return;
    }
    const [hostFd, childFd] = nativeStatus.addon.socketPair("seqpacket");
    this.transport = "shm";
    this.reason = "shared memory segments passed as file descriptors";
    this.channel = new FdChannel(hostFd, nativeStatus.addon);
    this.segments = new PeerSegments(nativeStatus.addon, limits);
    this.#childFd = childFd;
  }

  /** The descriptor to hand the child as its fd 4, or undefined in copy mode. */
  get childFd(): number | undefined {
    return this.#childFd;
  }

  /** Closes the parent's copy of the child's end (call after the spawn, also when it failed). */
  spawned(pid: number | undefined): void {
    if (pid !== undefined) this.#holder = `${this.#holder} (pid ${pid})`;
    if (this.#childFd !== undefined && nativeStatus.available) nativeStatus.addon.closeFd(this.#childFd);
    this.#childFd = undefined;
  }

  get init(): TensorInit {
    if (this.transport !== "shm") return { transport: "copy" };
    // Infinity (never) is said by leaving the field out: JSON has no Infinity.
    return Number.isFinite(this.#bytesThreshold)
      ? { transport: "shm", fd: GUEST_FD_CHANNEL, bytesFd: this.#bytesThreshold, bytesReturn: true }
      : { transport: "shm", fd: GUEST_FD_CHANNEL };
  }

  /** The memfd path for bytes (shm only): what we send from the threshold on, and what we accept per frame. */
  get bytesFd(): BytesFd | undefined {
    if (this.transport !== "shm" || !nativeStatus.available) return undefined;
    return { threshold: this.#bytesThreshold, maxBytes: this.#maxFrameBytes, native: nativeStatus.addon };
  }

  /** The ledger's name for the extension. */
  get holder(): string {
    return this.#holder;
  }

  /** The tensor value kind for the peer (tensors are encoded for this extension). */
  codec(): ValueKind {
    // The holder name is only known after the spawn: the codec reads it at each use.
    return tensorCodec({
      transport: this.transport,
      holder: () => this.#holder,
      ledger: segmentLedger,
      segments: this.segments,
      cuda: this.#cudaRefusal === undefined ? { ledger: cudaLedger, peer: this } : undefined,
      cudaRefusal: this.#cudaRefusal,
      onBind: (send) => {
        this.#send = send;
      },
      onReleased: (message) => this.released(message),
    });
  }

  /** Tells the extension to drop these CUDA exports of its own: nobody holds them any more. */
  releaseExports(ids: number[]): void {
    this.#send?.({ cudaExports: ids });
  }

  /** The extension released segments (`segs`) or freed CUDA tensors (`cuda`: host keys, once per opening). */
  released({ segs, cuda }: ReleaseMessage): void {
    if (segs !== undefined && segs.length > 0)
      segmentLedger.release(this.#holder, this.segments?.released(segs) ?? segs);
    if (cuda !== undefined && cuda.length > 0) cudaLedger.released(this.#holder, cuda);
  }

  /** The extension's process ended: it holds nothing now. */
  ended(): void {
    this.segments?.close();
    segmentLedger.forget(this.#holder);
    cudaLedger.ended(this);
    this.#send = undefined;
  }
}
