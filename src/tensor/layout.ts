// Shape and stride arithmetic, and the bounds check that keeps every element of a tensor inside its memory.

/** Most dimensions a tensor may have (numpy's limit is 64, torch's 25). */
export const MAX_DIMS = 64;

/** What a layout occupies: `span` elements from the first element (the view's length), `numel` elements. */
export interface LayoutExtent {
  numel: number;
  span: number;
}

/** Row-major (C order) strides in elements, as torch's `contiguous()` and numpy's default give. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let step = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = step;
    step *= Math.max(shape[i]!, 1);
  }
  return strides;
}

/** torch's is_contiguous(): C order, ignoring the strides of dimensions of size 1; empty tensors are contiguous. */
export function isContiguousLayout(shape: readonly number[], strides: readonly number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const size = shape[i]!;
    if (size === 0) return true;
    if (size !== 1 && strides[i] !== expected) return false;
    expected *= size;
  }
  return true;
}

/** A non-negative safe integer: a size, an index, a stride or an offset. */
export function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/**
 * Checks a layout against `capacity` bytes of memory and returns its extent; throws RangeError naming the fault.
 * Shape entries, strides (in elements; 0 is allowed, negative is not) and `byteOffset` must be non-negative safe
 * integers, the offset a multiple of the item size, and the last element's last byte inside `capacity`. No product
 * can overflow into a small number: past 2^53 the arithmetic is redone in BigInt.
 */
export function checkLayout(
  shape: readonly unknown[],
  strides: readonly unknown[],
  byteOffset: unknown,
  itemSize: number,
  capacity: number,
): LayoutExtent {
  if (shape.length > MAX_DIMS) throw new RangeError(`${shape.length} dimensions, more than ${MAX_DIMS}`);
  if (strides.length !== shape.length) throw new RangeError(`${strides.length} strides for ${shape.length} dimensions`);
  if (!isCount(byteOffset))
    throw new RangeError(`byte offset ${String(byteOffset)} is not a non-negative safe integer`);
  if (byteOffset % itemSize !== 0)
    throw new RangeError(`byte offset ${byteOffset} is not a multiple of the item size ${itemSize}`);
  // In doubles first: a product or sum of non-negative safe integers is exact while it stays a safe integer, and
  // past that it reads as larger than one (rounding cannot go below 2^53), so going past is always seen. Only then
  // is it worked out again in BigInt (a BigInt per dimension cost every received tensor ~1 µs).
  let numel = 1;
  let last = 0;
  let exact = true;
  for (let i = 0; i < shape.length; i++) {
    const size = shape[i];
    const stride = strides[i];
    if (!isCount(size)) throw new RangeError(`shape[${i}] = ${String(size)} is not a non-negative safe integer`);
    if (!isCount(stride)) throw new RangeError(`strides[${i}] = ${String(stride)} is not a non-negative safe integer`);
    numel *= size;
    if (size > 0) last += (size - 1) * stride;
    if (numel > Number.MAX_SAFE_INTEGER || last > Number.MAX_SAFE_INTEGER) exact = false;
  }
  if (!exact) return extentInBigInts(shape as number[], strides as number[], byteOffset, itemSize, capacity);
  if (numel === 0) {
    if (byteOffset > capacity) throw new RangeError(`byte offset ${byteOffset} is past the end (${capacity} bytes)`);
    return { numel: 0, span: 0 };
  }
  const span = last + 1;
  const end = byteOffset + span * itemSize;
  // An end past 2^53 may be rounded, but it is past any capacity (a safe integer) all the same.
  if (end > capacity) {
    throw new RangeError(`the tensor reaches byte ${end}, past the end of its ${capacity}-byte storage`);
  }
  return { numel, span };
}

/** checkLayout's arithmetic in BigInt, where the doubles could not be exact (entries already checked). */
function extentInBigInts(
  shape: readonly number[],
  strides: readonly number[],
  byteOffset: number,
  itemSize: number,
  capacity: number,
): LayoutExtent {
  let numel = 1n;
  let last = 0n;
  for (let i = 0; i < shape.length; i++) {
    const size = shape[i]!;
    numel *= BigInt(size);
    if (size > 0) last += BigInt(size - 1) * BigInt(strides[i]!);
  }
  const limit = BigInt(Number.MAX_SAFE_INTEGER);
  if (numel > limit) throw new RangeError(`${numel} elements is too many`);
  if (numel === 0n) {
    if (byteOffset > capacity) throw new RangeError(`byte offset ${byteOffset} is past the end (${capacity} bytes)`);
    return { numel: 0, span: 0 };
  }
  const span = last + 1n;
  const end = BigInt(byteOffset) + span * BigInt(itemSize);
  if (end > BigInt(capacity)) {
    throw new RangeError(`the tensor reaches byte ${end}, past the end of its ${capacity}-byte storage`);
  }
  return { numel: Number(numel), span: Number(span) };
}

/** Calls `visit(elementOffset, index)` for each element in C order; offsets are in elements from the first. */
export function forEachOffset(
  shape: readonly number[],
  strides: readonly number[],
  visit: (offset: number, index: number) => void,
): void {
  const dims = shape.length;
  if (shape.some((size) => size === 0)) return;
  const counter = new Array<number>(dims).fill(0);
  let offset = 0;
  for (let index = 0; ; index++) {
    visit(offset, index);
    let d = dims - 1;
    while (d >= 0) {
      counter[d]! += 1;
      offset += strides[d]!;
      if (counter[d]! < shape[d]!) break;
      offset -= strides[d]! * shape[d]!;
      counter[d] = 0;
      d -= 1;
    }
    if (d < 0) return;
  }
}
