// Tensor: a typed, strided view of a segment that the host can hand to an extension without copying.

import { defaultAllocator, type SegmentAllocator } from "./allocator.js";
import {
  bfloat16ToNumber,
  dtypeInfo,
  dtypeOfArray,
  halfToNumber,
  type DType,
  type DTypeInfo,
  type TensorData,
} from "./dtype.js";
import { checkLayout, contiguousStrides, forEachOffset, isContiguousLayout } from "./layout.js";
import type { Segment } from "./segment.js";

/** Where new tensors go. Default: shared memory when the native addon works, else the heap (copied when sent). */
export interface TensorOptions {
  /** true: shared memory or throw; false: heap memory; undefined: shared when possible. */
  shared?: boolean;
  allocator?: SegmentAllocator;
}

/** How a tensor lies in its segment. `strides` and `byteOffset` default to C order from byte 0. */
export interface TensorLayout {
  dtype: DType;
  shape: readonly number[];
  /** In elements, like torch's `stride()` (numpy's `strides` divided by the item size). */
  strides?: readonly number[];
  /** Bytes from the start of the segment to element [0, ..., 0]. */
  byteOffset?: number;
}

/** One element as `at()` reads it. */
export type TensorValue = number | bigint | boolean | [number, number];

/** A dropped Tensor releases its hold on the segment; the mapping itself goes when no view of it remains. */
const dropped = new FinalizationRegistry<Segment>((segment) => segment.release({ gc: true }));

/**
 * An n-dimensional array in a segment of memory: shared memory (zero-copy to and from extensions) or the heap.
 * `strides` count elements, as in torch: element [i, j] of a 2-d tensor is `data[(i * strides[0] + j * strides[1])
 * * lanes]` where `lanes` is 2 for complex dtypes (real, imaginary) and 1 otherwise. `data` starts at element
 * [0, ..., 0] and spans every element, so a non-contiguous view covers the gaps between its elements too.
 *
 * Each Tensor holds its segment; `release()` (or `using`) frees the memory once no other tensor holds it, after
 * which `data` is empty. A tensor that is only dropped is released by garbage collection.
 */
export class Tensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly byteOffset: number;
  readonly numel: number;
  readonly segment: Segment;
  /**
   * What an extension gets when this tensor is passed to it: a numpy array (undefined means numpy) or a torch
   * tensor. Tensors returned by an extension keep what they were there, so torch in gives torch out.
   */
  framework: "numpy" | "torch" | undefined;
  /** torch's requires_grad, carried both ways for torch tensors. */
  requiresGrad = false;
  /** The device the extension's tensor was on ("cuda:0") when it was copied here; it goes back there. */
  device: string | undefined;
  readonly #info: DTypeInfo;
  readonly #span: number;
  #data: TensorData | undefined;
  #released = false;

  /** A view of `segment`; the tensor takes a hold of its own (the caller keeps its hold). */
  constructor(segment: Segment, layout: TensorLayout) {
    const info = dtypeInfo(layout.dtype);
    const shape = Object.freeze([...layout.shape]);
    const strides = Object.freeze([...(layout.strides ?? contiguousStrides(shape))]);
    const byteOffset = layout.byteOffset ?? 0;
    const extent = checkLayout(shape, strides, byteOffset, info.itemSize, segment.size);
    this.dtype = info.name;
    this.shape = shape;
    this.strides = strides;
    this.byteOffset = byteOffset;
    this.numel = extent.numel;
    this.#span = extent.span;
    this.#info = info;
    this.segment = segment.retain();
    dropped.register(this, segment, this);
  }

  /** A tensor of `shape` in fresh memory. Its contents are unspecified by contract (in practice zero). */
  static empty(shape: readonly number[], dtype: DType = "float32", options: TensorOptions = {}): Tensor {
    return Tensor.zeros(shape, dtype, options);
  }

  /** A zero-filled tensor of `shape` (fresh memfd pages and ArrayBuffers are zero, so nothing is written). */
  static zeros(shape: readonly number[], dtype: DType = "float32", options: TensorOptions = {}): Tensor {
    const info = dtypeInfo(dtype);
    const numel = checkLayout(
      shape,
      contiguousStrides(shape as number[]),
      0,
      info.itemSize,
      Number.MAX_SAFE_INTEGER,
    ).numel;
    const segment = (options.allocator ?? defaultAllocator).allocate(numel * info.itemSize, { shared: options.shared });
    try {
      return new Tensor(segment, { dtype, shape });
    } finally {
      segment.release();
    }
  }

  /**
   * A tensor holding a copy of `array` (one copy, into shared memory when possible). The dtype defaults to the
   * array's own (Float32Array: float32); pass it for float16/bfloat16 (Uint16Array of bits), bool (Uint8Array)
   * or complex (Float32Array/Float64Array with real and imaginary interleaved). `shape` defaults to 1-d.
   */
  static from(
    array: ArrayBufferView & { length: number },
    shape?: readonly number[],
    options: TensorOptions & { dtype?: DType } = {},
  ): Tensor {
    const dtype = options.dtype ?? dtypeOfArray(array);
    const info = dtypeInfo(dtype);
    const fits = array instanceof info.array || (info.array === Uint8Array && array instanceof Uint8ClampedArray);
    if (!fits) throw new TypeError(`${dtype} data must be a ${info.array.name}, got ${array.constructor.name}`);
    if (array.length % info.lanes !== 0)
      throw new RangeError(`${dtype} data interleaves real and imaginary parts: its length must be even`);
    const elements = array.length / info.lanes;
    const finalShape = shape ?? [elements];
    const tensor = Tensor.empty(finalShape, dtype, options);
    if (tensor.numel !== elements) {
      tensor.release();
      throw new RangeError(`shape [${finalShape.join(", ")}] holds ${tensor.numel} elements, the array ${elements}`);
    }
    new Uint8Array(tensor.segment.buffer, 0, tensor.nbytes).set(
      new Uint8Array(array.buffer, array.byteOffset, tensor.nbytes),
    );
    return tensor;
  }

  get itemSize(): number {
    return this.#info.itemSize;
  }

  /** Bytes of the elements themselves (numel * itemSize), not of the span a strided view covers. */
  get nbytes(): number {
    return this.numel * this.#info.itemSize;
  }

  get isContiguous(): boolean {
    return isContiguousLayout(this.shape, this.strides);
  }

  /** True when the memory can go to an extension without a copy. */
  get isShared(): boolean {
    return this.segment.shared;
  }

  /** A typed-array view (no copy) from element [0, ..., 0] over every element; see the class comment. */
  get data(): TensorData {
    if (this.#released || this.segment.released) throw new Error("the tensor was released");
    this.#data ??= new this.#info.array(this.segment.buffer, this.byteOffset, this.#span * this.#info.lanes);
    return this.#data;
  }

  /** One element: number, bigint (int64/uint64), boolean (bool) or [real, imaginary] (complex); float16/bfloat16 decoded. */
  at(...index: number[]): TensorValue {
    if (index.length !== this.shape.length)
      throw new RangeError(`${index.length} indices for ${this.shape.length} dimensions`);
    let offset = 0;
    index.forEach((i, d) => {
      if (!Number.isInteger(i) || i < 0 || i >= this.shape[d]!)
        throw new RangeError(`index ${i} out of range for dimension ${d} of size ${this.shape[d]}`);
      offset += i * this.strides[d]!;
    });
    const data = this.data;
    const lanes = this.#info.lanes;
    const raw = data[offset * lanes]!;
    if (lanes === 2) return [raw as number, data[offset * 2 + 1] as number];
    if (this.dtype === "bool") return raw !== 0;
    if (this.dtype === "float16") return halfToNumber(raw as number);
    if (this.dtype === "bfloat16") return bfloat16ToNumber(raw as number);
    return raw;
  }

  /** A C-order copy of the elements in a new typed array of the view's kind (length numel * lanes). */
  toArray(): TensorData {
    const lanes = this.#info.lanes;
    const data = this.data;
    if (this.isContiguous) return data.slice(0, this.numel * lanes);
    const out = new this.#info.array(this.numel * lanes);
    if (lanes === 1)
      forEachOffset(this.shape, this.strides, (offset, i) => {
        out[i] = data[offset]!;
      });
    else
      forEachOffset(this.shape, this.strides, (offset, i) => {
        out[2 * i] = data[2 * offset]!;
        out[2 * i + 1] = data[2 * offset + 1]!;
      });
    return out;
  }

  /** The view with dimensions `d0` and `d1` swapped (same memory). */
  transpose(d0: number, d1: number): Tensor {
    const order = this.shape.map((_, i) => i);
    order[this.#dim(d0)] = this.#dim(d1);
    order[this.#dim(d1)] = this.#dim(d0);
    return this.permute(...order);
  }

  /** The view with dimensions reordered (same memory), like torch's `permute`. */
  permute(...dims: number[]): Tensor {
    const order = dims.map((d) => this.#dim(d));
    if (order.length !== this.shape.length || new Set(order).size !== order.length)
      throw new RangeError(`permute needs each of ${this.shape.length} dimensions once`);
    return this.#view(
      order.map((d) => this.shape[d]!),
      order.map((d) => this.strides[d]!),
      this.byteOffset,
    );
  }

  /** Elements `start` to `start + length` of dimension `dim` (same memory), like torch's `narrow`. */
  narrow(dim: number, start: number, length: number): Tensor {
    const d = this.#dim(dim);
    const size = this.shape[d]!;
    if (!Number.isInteger(start) || !Number.isInteger(length) || start < 0 || length < 0 || start + length > size) {
      throw new RangeError(`narrow(${dim}, ${start}, ${length}) is outside a dimension of size ${size}`);
    }
    const shape = [...this.shape];
    shape[d] = length;
    const offset = length === 0 ? this.byteOffset : this.byteOffset + start * this.strides[d]! * this.#info.itemSize;
    return this.#view(shape, this.strides, offset);
  }

  /** Drops this tensor's hold; the memory goes when no other tensor (or transfer) holds the segment. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    dropped.unregister(this);
    this.segment.release();
  }

  [Symbol.dispose](): void {
    this.release();
  }

  #dim(dim: number): number {
    const d = dim < 0 ? dim + this.shape.length : dim;
    if (!Number.isInteger(d) || d < 0 || d >= this.shape.length)
      throw new RangeError(`dimension ${dim} out of range for ${this.shape.length} dimensions`);
    return d;
  }

  #view(shape: readonly number[], strides: readonly number[], byteOffset: number): Tensor {
    if (this.#released) throw new Error("the tensor was released");
    const view = new Tensor(this.segment, { dtype: this.dtype, shape, strides, byteOffset });
    view.framework = this.framework;
    view.device = this.device;
    return view;
  }
}
