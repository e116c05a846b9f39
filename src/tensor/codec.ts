// The `$tensor` value kind of the RPC codec: host Tensors out, received descriptors in, recorded in the ledger.

import { ProtocolError } from "../errors.js";
import type { ReleaseMessage } from "../rpc/protocol.js";
import type { DecodeContext, EncodeContext, KindRelease, ValueKind } from "../rpc/value-kind.js";
import { defaultAllocator, type SegmentAllocator } from "./allocator.js";
import { CudaTensor } from "./cuda.js";
import type { CudaLedger, CudaPeer } from "./cuda-ledger.js";
import { segmentLedger, type SegmentLedger } from "./ledger.js";
import type { PeerSegments } from "./peer-segments.js";
import { Tensor } from "./tensor.js";
import { encodeTensor, ReceivedFrame } from "./wire.js";

import type { TensorTransport } from "../vocabulary.js";
export type { TensorTransport };

export interface TensorCodecOptions {
  transport: TensorTransport;
  /** Who is on the other side, for the ledger (e.g. the extension's name), or a function that says it. */
  holder: string | (() => string);
  allocator?: SegmentAllocator;
  ledger?: SegmentLedger;
  /** The connection's book of segments the other side keeps: they then travel by id (see PeerSegments). */
  segments?: PeerSegments;
  /** The host's CUDA book and this connection's side of it; without them CUDA tensors are refused. */
  cuda?: { ledger: CudaLedger; peer: CudaPeer };
  /** Why CUDA tensors are refused here, when `cuda` is absent (the TCP transport says it carries values only). */
  cudaRefusal?: string;
  /** Called with how to send `release` fields once the RPC peer is made. */
  onBind?: (send: (fields: KindRelease) => void) => void;
  /** The other side released segments (`segs`) or freed CUDA tensors (`cuda`) of ours. */
  onReleased?: (message: ReleaseMessage) => void;
}

const TAG = "$tensor";

/** The tensor value kind for one connection. */
export function tensorCodec(options: TensorCodecOptions): ValueKind {
  const allocator = options.allocator ?? defaultAllocator;
  const ledger = options.ledger ?? segmentLedger;
  const { transport } = options;
  const holderOf = options.holder;
  const holder = (): string => (typeof holderOf === "string" ? holderOf : holderOf());
  const frameKey = {};
  const { segments } = options;
  const byId = segments === undefined ? undefined : (id: number, size: number) => segments.resolve(id, size);

  return {
    tag: TAG,
    accepts: (value) => value instanceof Tensor || value instanceof CudaTensor,
    encode(value: object, context: EncodeContext): unknown {
      if (value instanceof CudaTensor) {
        if (options.cuda === undefined)
          throw new TypeError(options.cudaRefusal ?? "CUDA tensors cannot cross this connection");
        return options.cuda.ledger.sending(value, options.cuda.peer);
      }
      const tensor = value as Tensor;
      // A zero-size tensor has no bytes to share (and an empty file cannot be mapped): it goes as an attachment.
      const mode = transport === "shm" && tensor.numel > 0 ? "shm" : "copy";
      const descriptor = encodeTensor(
        tensor,
        {
          addFd: (fd) => context.addFd(fd, tensor.segment),
          attach: (bytes) => context.attach(bytes),
          shm:
            segments === undefined
              ? undefined
              : (segment) => segments.storage(segment, (fd, hold) => context.addFd(fd, hold)),
        },
        mode,
      );
      if (descriptor.storage.kind === "shm") {
        ledger.hold(tensor.segment, holder());
        descriptor.storage.id = tensor.segment.id;
      }
      if (tensor.framework !== undefined) descriptor.framework = tensor.framework;
      if (tensor.requiresGrad) descriptor.requiresGrad = true;
      if (tensor.device !== undefined) descriptor.device = tensor.device;
      return descriptor;
    },
    decode(payload: unknown, context: DecodeContext): unknown {
      const frame = context.frameState(
        frameKey,
        () => new ReceivedFrame(context.takeFds(), context.attachments, allocator, (id) => ledger.find(id), byId),
        (received) => {
          try {
            for (const segment of received.segments) {
              if (!segment.shared) continue;
              ledger.hold(segment, holder());
              segments?.received(segment); // throws past the connection's segment limits
            }
            for (const segment of received.named) ledger.hold(segment, holder());
          } finally {
            received.close();
          }
        },
      );
      if ((payload as { storage?: { kind?: unknown } } | null)?.storage?.kind === "cuda") {
        if (options.cuda === undefined)
          throw new ProtocolError(options.cudaRefusal ?? "CUDA tensors cannot cross this connection");
        return options.cuda.ledger.received(payload, options.cuda.peer);
      }
      let tensor: Tensor;
      try {
        tensor = frame.decode(payload);
      } catch (error) {
        if (error instanceof ProtocolError) throw error;
        throw new ProtocolError(`a received tensor cannot be used: ${(error as Error).message}`, { cause: error });
      }
      const raw = payload as { framework?: "numpy" | "torch"; requiresGrad?: boolean; device?: string };
      tensor.framework = raw.framework;
      tensor.requiresGrad = raw.requiresGrad === true;
      tensor.device = raw.device;
      return tensor;
    },
    bind(send) {
      segments?.bind((ids) => send({ segs: ids }));
      options.onBind?.(send);
    },
    released: options.onReleased,
  };
}
