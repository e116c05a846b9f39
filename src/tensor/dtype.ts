// The dtype table: item size, the TypedArray that views the data, and the numpy/torch names of each dtype.

/** Every element type a Tensor can hold. */
export const DTYPES = [
  "bool",
  "int8",
  "int16",
  "int32",
  "int64",
  "uint8",
  "uint16",
  "uint32",
  "uint64",
  "float16",
  "bfloat16",
  "float32",
  "float64",
  "complex64",
  "complex128",
] as const;

export type DType = (typeof DTYPES)[number];

/** The TypedArray classes a tensor's `data` can be. */
export type TensorData =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | Float32Array
  | Float64Array;

export type TensorDataConstructor =
  | Uint8ArrayConstructor
  | Int8ArrayConstructor
  | Int16ArrayConstructor
  | Uint16ArrayConstructor
  | Int32ArrayConstructor
  | Uint32ArrayConstructor
  | BigInt64ArrayConstructor
  | BigUint64ArrayConstructor
  | Float32ArrayConstructor
  | Float64ArrayConstructor;

export interface DTypeInfo {
  readonly name: DType;
  /** Bytes per element (numpy's itemsize, torch's element_size()). */
  readonly itemSize: number;
  /** The TypedArray class of the `data` view. */
  readonly array: TensorDataConstructor;
  /**
   * View entries per element: 1, or 2 for complex (interleaved real, imaginary). Element i of a contiguous
   * tensor is `data[i * lanes]` (and `data[i * lanes + 1]` for the imaginary part).
   */
  readonly lanes: 1 | 2;
  /** numpy's little-endian dtype string; undefined where numpy has none (bfloat16). */
  readonly numpy: string | undefined;
  /** torch's dtype attribute name (torch.uint16/32/64 exist from torch 2.3, with few operations). */
  readonly torch: string | undefined;
}

function info(
  name: DType,
  itemSize: number,
  array: TensorDataConstructor,
  lanes: 1 | 2,
  numpy: string | undefined,
  torch: string | undefined,
): DTypeInfo {
  return Object.freeze({ name, itemSize, array, lanes, numpy, torch });
}

/**
 * How each dtype is viewed. Notes on the ones JavaScript has no array for:
 * - bool: Uint8Array of 0/1 (numpy and torch store one byte per bool).
 * - float16, bfloat16: Uint16Array of the raw bits; decode with `halfToNumber`/`bfloat16ToNumber`.
 * - complex64, complex128: Float32Array / Float64Array with two entries (real, imaginary) per element.
 * - int64, uint64: BigInt64Array / BigUint64Array.
 */
export const DTYPE_INFO: Readonly<Record<DType, DTypeInfo>> = Object.freeze({
  bool: info("bool", 1, Uint8Array, 1, "|b1", "bool"),
  int8: info("int8", 1, Int8Array, 1, "|i1", "int8"),
  int16: info("int16", 2, Int16Array, 1, "<i2", "int16"),
  int32: info("int32", 4, Int32Array, 1, "<i4", "int32"),
  int64: info("int64", 8, BigInt64Array, 1, "<i8", "int64"),
  uint8: info("uint8", 1, Uint8Array, 1, "|u1", "uint8"),
  uint16: info("uint16", 2, Uint16Array, 1, "<u2", "uint16"),
  uint32: info("uint32", 4, Uint32Array, 1, "<u4", "uint32"),
  uint64: info("uint64", 8, BigUint64Array, 1, "<u8", "uint64"),
  float16: info("float16", 2, Uint16Array, 1, "<f2", "float16"),
  bfloat16: info("bfloat16", 2, Uint16Array, 1, undefined, "bfloat16"),
  float32: info("float32", 4, Float32Array, 1, "<f4", "float32"),
  float64: info("float64", 8, Float64Array, 1, "<f8", "float64"),
  complex64: info("complex64", 8, Float32Array, 2, "<c8", "complex64"),
  complex128: info("complex128", 16, Float64Array, 2, "<c16", "complex128"),
});

export function isDType(value: unknown): value is DType {
  return typeof value === "string" && Object.prototype.hasOwnProperty.call(DTYPE_INFO, value);
}

export function dtypeInfo(dtype: DType): DTypeInfo {
  const found = isDType(dtype) ? DTYPE_INFO[dtype] : undefined;
  if (!found) throw new TypeError(`unknown dtype ${JSON.stringify(dtype)}; expected one of ${DTYPES.join(", ")}`);
  return found;
}

/** The dtype a TypedArray means by default (Uint16Array is uint16, not float16: pass the dtype for that). */
export function dtypeOfArray(array: ArrayBufferView): DType {
  if (array instanceof Uint8Array || array instanceof Uint8ClampedArray) return "uint8";
  if (array instanceof Int8Array) return "int8";
  if (array instanceof Int16Array) return "int16";
  if (array instanceof Uint16Array) return "uint16";
  if (array instanceof Int32Array) return "int32";
  if (array instanceof Uint32Array) return "uint32";
  if (array instanceof BigInt64Array) return "int64";
  if (array instanceof BigUint64Array) return "uint64";
  if (array instanceof Float32Array) return "float32";
  if (array instanceof Float64Array) return "float64";
  throw new TypeError(`no dtype for ${array.constructor.name}; pass a TypedArray`);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half-precision bits to a number. */
export function halfToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/** A number to IEEE half-precision bits (round to nearest even; overflow to infinity). */
export function numberToHalf(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - e;
    const half = mantissa >> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const midpoint = 1 << (shift - 1);
    return sign | (rest > midpoint || (rest === midpoint && half & 1) ? half + 1 : half);
  }
  const rest = mantissa & 0x1fff;
  let half = (e << 10) | (mantissa >> 13);
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half += 1;
  return sign | half;
}

/** bfloat16 bits (the high half of a float32) to a number. */
export function bfloat16ToNumber(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0]!;
}

/** A number to bfloat16 bits (round to nearest even; NaN stays NaN). */
export function numberToBfloat16(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  if (Number.isNaN(value)) return ((x >>> 16) & 0xffff) | 0x40;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}
