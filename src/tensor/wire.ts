// Tensor <-> descriptor: what a frame carries for each tensor, and turning received descriptors back into Tensors.

import { fstatSync } from "node:fs";
import { ProtocolError } from "../errors.js";
import { defaultAllocator, type SegmentAllocator } from "./allocator.js";
import { validateDescriptor, type ShmStorage, type TensorDescriptor } from "./descriptor.js";
import { contiguousStrides } from "./layout.js";
import { Segment } from "./segment.js";
import { Tensor } from "./tensor.js";

/** Where an outgoing frame collects what travels beside its JSON. */
export interface TensorSink {
  /** Adds `fd` to the frame's SCM_RIGHTS list (once per fd) and returns its index; the caller keeps owning it. */
  addFd(fd: number): number;
  /** Adds bytes as a binary attachment and returns its index. */
  attach(bytes: Uint8Array): number;
  /** The storage of a shared segment, when the sink decides it (by id, or by fd through its own `addFd`). */
  shm?(segment: Segment): ShmStorage;
}

/**
 * The descriptor for `tensor`: its segment by fd when it is shared and `transport` is "shm" (no copy), else its
 * elements, compacted to C order, as one attachment (one copy). The fd can be released as soon as the frame is
 * sent: the kernel keeps the memory for whoever received it.
 */
export function encodeTensor(tensor: Tensor, sink: TensorSink, transport: "shm" | "copy" = "shm"): TensorDescriptor {
  if (transport === "shm" && tensor.isShared) {
    return {
      dtype: tensor.dtype,
      shape: [...tensor.shape],
      strides: [...tensor.strides],
      offset: tensor.byteOffset,
      storage: sink.shm?.(tensor.segment) ?? {
        kind: "shm",
        fd: sink.addFd(tensor.segment.fd),
        size: tensor.segment.size,
      },
    };
  }
  const elements = tensor.toArray();
  const attachment = sink.attach(new Uint8Array(elements.buffer, elements.byteOffset, elements.byteLength));
  return {
    dtype: tensor.dtype,
    shape: [...tensor.shape],
    strides: contiguousStrides(tensor.shape),
    offset: 0,
    storage: { kind: "bytes", attachment },
  };
}

/**
 * The fds and attachments that came with one frame. Each fd is imported once, on first use, so several
 * descriptors naming it share one mapping; `close()` closes the fds no descriptor used and drops the frame's
 * own holds (the Tensors keep theirs).
 */
export class ReceivedFrame {
  readonly #fds: (number | undefined)[];
  readonly #attachments: readonly Uint8Array[];
  readonly #segments = new Map<number, Segment>();
  readonly #allocator: SegmentAllocator;
  readonly #reuse: ((id: number) => Segment | undefined) | undefined;
  readonly #byId: ((id: number, size: number) => Segment) | undefined;
  /** Segments named by id (no fd), each with one hold of this frame. */
  readonly #named = new Map<number, Segment>();

  /**
   * Takes ownership of `fds`. `reuse(inode)` may return a live segment of the same file (one the host sent or
   * received before): it is used instead of mapping the memory a second time. `byId(id, size)` returns (with a
   * hold for the frame) a segment named by id alone, or throws ProtocolError; without it such a name is refused.
   */
  constructor(
    fds: readonly number[],
    attachments: readonly Uint8Array[],
    allocator: SegmentAllocator = defaultAllocator,
    reuse?: (id: number) => Segment | undefined,
    byId?: (id: number, size: number) => Segment,
  ) {
    this.#fds = [...fds];
    this.#attachments = attachments;
    this.#allocator = allocator;
    this.#reuse = reuse;
    this.#byId = byId;
  }

  /** The segments this frame brought by fd, in the order their descriptors were decoded. */
  get segments(): Segment[] {
    return [...this.#segments.values()];
  }

  /** The segments its descriptors named by id. */
  get named(): Segment[] {
    return [...this.#named.values()];
  }

  /** Checks `raw` (see validateDescriptor) and returns a Tensor over the received memory. */
  decode(raw: unknown): Tensor {
    const { descriptor } = validateDescriptor(raw, {
      fdCount: this.#fds.length,
      attachmentSizes: this.#attachments.map((a) => a.byteLength),
    });
    const layout = {
      dtype: descriptor.dtype,
      shape: descriptor.shape,
      strides: descriptor.strides,
      byteOffset: descriptor.offset,
    };
    const storage = descriptor.storage;
    if (storage.kind === "cuda")
      throw new ProtocolError("a CUDA tensor cannot be read by the host; it can only be forwarded");
    if (storage.kind === "bytes") {
      const bytes = this.#attachments[storage.attachment]!;
      const segment = Segment.heap(bytes.slice().buffer); // aligned copy: the attachment may sit at any offset
      try {
        return new Tensor(segment, layout);
      } finally {
        segment.release();
      }
    }
    if (storage.fd === undefined) return new Tensor(this.#namedSegment(storage), layout);
    return new Tensor(this.#segment(storage.fd, storage.size), layout);
  }

  #namedSegment(storage: ShmStorage): Segment {
    const id = storage.id!;
    let segment = this.#named.get(id);
    if (segment === undefined) {
      if (this.#byId === undefined)
        throw new ProtocolError(`a tensor names segment ${id} without an fd, which this connection does not allow`);
      segment = this.#byId(id, storage.size);
      this.#named.set(id, segment);
    }
    if (storage.size > segment.size)
      throw new ProtocolError(`segment ${id} is declared with ${storage.size} bytes, more than its ${segment.size}`);
    return segment;
  }

  #segment(index: number, size: number): Segment {
    const known = this.#segments.get(index);
    if (known !== undefined) {
      if (size > known.size) throw new ProtocolError(`fd ${index} is declared with ${size} bytes after ${known.size}`);
      return known;
    }
    const fd = this.#fds[index];
    if (fd === undefined) throw new ProtocolError(`fd ${index} was already used`);
    this.#fds[index] = undefined;
    const same = this.#known(fd, size);
    if (same !== undefined) {
      this.#allocator.native?.closeFd(fd);
      this.#segments.set(index, same.retain());
      return same;
    }
    const segment = this.#allocator.importFd(fd, size);
    this.#segments.set(index, segment);
    return segment;
  }

  #known(fd: number, size: number): Segment | undefined {
    if (this.#reuse === undefined) return undefined;
    let stat: { ino: number; dev: number };
    try {
      stat = fstatSync(fd);
    } catch {
      return undefined; // importFd says what is wrong with it
    }
    const segment = this.#reuse(stat.ino);
    if (segment === undefined || segment.size < size) return undefined;
    return fstatSync(segment.fd).dev === stat.dev ? segment : undefined; // the same file, not a namesake elsewhere
  }

  close(): void {
    const native = this.#allocator.native;
    for (const [i, fd] of this.#fds.entries()) {
      if (fd !== undefined && native) native.closeFd(fd);
      this.#fds[i] = undefined;
    }
    for (const segment of this.#segments.values()) segment.release();
    this.#segments.clear();
    for (const segment of this.#named.values()) segment.release();
    this.#named.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
