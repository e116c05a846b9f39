// The wire form of a tensor ($tensor payload) and the checks an incoming one must pass before the host maps it.

import { ProtocolError } from "../errors.js";
import { DTYPES, dtypeInfo, isDType, type DType } from "./dtype.js";
import { checkLayout, isCount, MAX_DIMS, type LayoutExtent } from "./layout.js";

/**
 * A shared-memory segment: passed with the frame (`fd` indexes the frame's received descriptors), or, without
 * `fd`, one the receiver already holds for this connection, named by `id` alone.
 */
export interface ShmStorage {
  kind: "shm";
  fd?: number;
  /** Bytes of the segment the tensor may use (the received file must hold at least this many). */
  size: number;
  /** The segment's inode: the receiver names it in its `release`, and a segment it holds travels by it alone. */
  id?: number;
}

/** Copy mode: the bytes are binary attachment `attachment` of the frame (never JSON lists or base64). */
export interface BytesStorage {
  kind: "bytes";
  attachment: number;
}

/**
 * A CUDA tensor as torch's IPC handle. The host forwards it untouched; `ipc` is whatever the producing guest's
 * torch put in it (storage handle, reference counter, event), opaque here.
 */
export interface CudaStorage {
  kind: "cuda";
  device: number;
  /** Bytes of the CUDA storage. */
  size: number;
  ipc: Record<string, unknown>;
}

export type TensorStorage = ShmStorage | BytesStorage | CudaStorage;

/** A tensor on the wire. `strides` are in elements (torch's convention), `offset` in bytes into the storage. */
export interface TensorDescriptor {
  dtype: DType;
  shape: number[];
  strides: number[];
  offset: number;
  storage: TensorStorage;
  /** What the sender had, so the receiver can answer in kind: torch in, torch out. */
  framework?: "numpy" | "torch";
  /** torch's requires_grad, carried for torch tensors. */
  requiresGrad?: boolean;
  /** Where the sender's tensor lived when that was not the CPU ("cuda:0"): a copy goes back there on arrival. */
  device?: string;
}

/** What the frame carrying a descriptor brought along, to check indexes and sizes against. */
export interface DescriptorContext {
  /** How many fds came with the frame. */
  fdCount: number;
  /** Byte lengths of the frame's attachments. */
  attachmentSizes: readonly number[];
}

/** A checked descriptor and the extent of its layout. */
export interface ValidDescriptor {
  descriptor: TensorDescriptor;
  extent: LayoutExtent;
}

const MAX_SEGMENT_BYTES = Number.MAX_SAFE_INTEGER;

/**
 * How many bytes a received tensor's elements may add up to beyond its storage. Strides may repeat elements (0 is
 * numpy's and torch's broadcast), so a few bytes could claim 2^50 elements, which a copy (`toArray`, sending it in
 * copy mode) would then allocate in the host. Elements times item size must fit in the storage or in this.
 */
export const MAX_BROADCAST_BYTES = 64 * 1024 * 1024;

function fail(path: string, message: string): never {
  throw new ProtocolError(`invalid tensor descriptor: ${path} ${message}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function index(value: unknown, count: number, path: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value >= count) {
    fail(path, `must index one of ${count} (got ${JSON.stringify(value)})`);
  }
  return value;
}

function count(value: unknown, path: string): number {
  if (!isCount(value)) fail(path, `must be a non-negative integer (got ${JSON.stringify(value)})`);
  return value;
}

function intList(value: unknown, path: string): number[] {
  if (!Array.isArray(value)) fail(path, "must be a list");
  if (value.length > MAX_DIMS) fail(path, `has ${value.length} entries, more than ${MAX_DIMS}`);
  const out = new Array<number>(value.length);
  for (let i = 0; i < value.length; i++) {
    const item: unknown = value[i];
    // The path is spelled out only for a refusal: a template per entry would cost every descriptor a string each.
    out[i] = isCount(item) ? item : count(item, `${path}[${i}]`);
  }
  return out;
}

function storageOf(raw: unknown, context: DescriptorContext): { storage: TensorStorage; capacity: number } {
  if (!isRecord(raw)) fail("storage", "must be an object");
  switch (raw.kind) {
    case "shm": {
      const size = count(raw.size, "storage.size");
      if (size > MAX_SEGMENT_BYTES) fail("storage.size", "is too large");
      const storage: ShmStorage = { kind: "shm", size };
      if (raw.fd !== undefined || raw.id === undefined) storage.fd = index(raw.fd, context.fdCount, "storage.fd");
      if (raw.id !== undefined) storage.id = count(raw.id, "storage.id");
      return { storage, capacity: size };
    }
    case "bytes": {
      const attachment = index(raw.attachment, context.attachmentSizes.length, "storage.attachment");
      return { storage: { kind: "bytes", attachment }, capacity: context.attachmentSizes[attachment]! };
    }
    case "cuda": {
      if (!isRecord(raw.ipc)) fail("storage.ipc", "must be an object");
      const size = count(raw.size, "storage.size");
      return {
        storage: { kind: "cuda", device: count(raw.device, "storage.device"), size, ipc: raw.ipc },
        capacity: size,
      };
    }
    default:
      return fail("storage.kind", `must be "shm", "bytes" or "cuda" (got ${JSON.stringify(raw.kind)})`);
  }
}

/**
 * Checks a descriptor that came from another process; throws ProtocolError naming the first fault. Every element
 * must lie inside the storage as declared (the caller then checks the received fd holds at least `storage.size`
 * bytes, which SegmentAllocator.importFd does), so a hostile extension cannot make the host read out of bounds.
 */
export function validateDescriptor(raw: unknown, context: DescriptorContext): ValidDescriptor {
  if (!isRecord(raw)) fail("", "must be an object");
  if (!isDType(raw.dtype)) fail("dtype", `must be one of ${DTYPES.join(", ")} (got ${JSON.stringify(raw.dtype)})`);
  const dtype = raw.dtype;
  const shape = intList(raw.shape, "shape");
  const strides = intList(raw.strides, "strides");
  if (strides.length !== shape.length) fail("strides", `has ${strides.length} entries for ${shape.length} dimensions`);
  const offset = count(raw.offset, "offset");
  const { storage, capacity } = storageOf(raw.storage, context);
  let extent: LayoutExtent;
  try {
    extent = checkLayout(shape, strides, offset, dtypeInfo(dtype).itemSize, capacity);
  } catch (error) {
    return fail("layout", (error as Error).message);
  }
  const claimed = extent.numel * dtypeInfo(dtype).itemSize;
  if (claimed > Math.max(capacity, MAX_BROADCAST_BYTES)) {
    fail(
      "shape",
      `claims ${extent.numel} elements (${claimed} bytes) over ${capacity} bytes of storage, past the limit maxBroadcastBytes = ${MAX_BROADCAST_BYTES}`,
    );
  }
  const descriptor: TensorDescriptor = { dtype, shape, strides, offset, storage };
  if (raw.framework !== undefined) {
    if (raw.framework !== "numpy" && raw.framework !== "torch")
      fail("framework", `must be "numpy" or "torch" (got ${JSON.stringify(raw.framework)})`);
    descriptor.framework = raw.framework;
  }
  if (raw.requiresGrad !== undefined) {
    if (typeof raw.requiresGrad !== "boolean") fail("requiresGrad", "must be a boolean");
    descriptor.requiresGrad = raw.requiresGrad;
  }
  if (raw.device !== undefined) {
    if (typeof raw.device !== "string" || !/^(cpu|cuda(:\d{1,3})?)$/.test(raw.device))
      fail("device", `must be "cpu" or "cuda:N" (got ${JSON.stringify(raw.device)})`);
    descriptor.device = raw.device;
  }
  return { descriptor, extent };
}
