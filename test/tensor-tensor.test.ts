// Tensor: every dtype through from/empty/zeros, strides and non-contiguous views, release, half-float codecs.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { SegmentAllocator } from "../src/tensor/allocator.js";
import {
  bfloat16ToNumber,
  DTYPE_INFO,
  DTYPES,
  halfToNumber,
  numberToBfloat16,
  numberToHalf,
  type DType,
} from "../src/tensor/dtype.js";
import { nativeStatus } from "../src/tensor/native.js";
import { Tensor } from "../src/tensor/tensor.js";

const sharedKind = nativeStatus.available ? "memfd" : "heap";

/** Sample data of `n` elements for a dtype, in its view array (complex: 2 entries per element). */
function sample(dtype: DType, n: number) {
  const info = DTYPE_INFO[dtype];
  const out = new info.array(n * info.lanes);
  for (let i = 0; i < out.length; i++) {
    if (out instanceof BigInt64Array || out instanceof BigUint64Array) out[i] = BigInt(i) * 3n;
    else if (dtype === "bool") out[i] = i % 2;
    else if (dtype === "float16") out[i] = numberToHalf(i / 4);
    else if (dtype === "bfloat16") out[i] = numberToBfloat16(i / 4);
    else out[i] = dtype.startsWith("float") || dtype.startsWith("complex") ? i / 4 : i % 100;
  }
  return out;
}

describe("Tensor", () => {
  for (const dtype of DTYPES) {
    test(`${dtype}: from, zeros, empty`, () => {
      const info = DTYPE_INFO[dtype];
      const data = sample(dtype, 12);
      const t = Tensor.from(data, [3, 4], { dtype });
      assert.equal(t.dtype, dtype);
      assert.deepEqual(t.shape, [3, 4]);
      assert.deepEqual(t.strides, [4, 1]);
      assert.equal(t.byteOffset, 0);
      assert.equal(t.numel, 12);
      assert.equal(t.itemSize, info.itemSize);
      assert.equal(t.nbytes, 12 * info.itemSize);
      assert.equal(t.isContiguous, true);
      assert.equal(t.segment.kind, sharedKind);
      assert.ok(t.data instanceof info.array);
      assert.deepEqual(t.data, data, "the data view holds the copied values");
      assert.notEqual(t.data.buffer, data.buffer, "from copies once into its own memory");
      assert.deepEqual(t.toArray(), data);
      const last = t.at(2, 3);
      if (dtype === "bool") assert.equal(last, true);
      else if (info.lanes === 2) assert.deepEqual(last, [22 / 4, 23 / 4]);
      else if (dtype === "int64" || dtype === "uint64") assert.equal(last, 33n);
      else if (dtype.startsWith("float") || dtype === "bfloat16") assert.equal(last, 11 / 4);
      else assert.equal(last, 11);
      t.release();

      for (const make of [Tensor.zeros, Tensor.empty]) {
        const z = make([2, 0, 3], dtype);
        assert.equal(z.numel, 0);
        assert.equal(z.data.length, 0);
        z.release();
        const y = make([5, 2], dtype);
        assert.equal(y.data.length, 10 * info.lanes);
        assert.ok(y.data.every((v: number | bigint) => v === 0 || v === 0n));
        y.release();
      }
    });
  }

  test("from infers the dtype from the array, checks the shape and the array class", () => {
    assert.equal(Tensor.from(new Int16Array(4)).dtype, "int16");
    assert.equal(Tensor.from(new BigUint64Array(4)).dtype, "uint64");
    assert.equal(Tensor.from(new Uint8ClampedArray(4)).dtype, "uint8");
    assert.deepEqual(Tensor.from(new Float32Array(6)).shape, [6]);
    assert.deepEqual(Tensor.from(new Float32Array(6), [2, 3]).shape, [2, 3]);
    assert.throws(() => Tensor.from(new Float32Array(6), [4, 2]), /holds 8 elements, the array 6/);
    assert.throws(
      () => Tensor.from(new Float32Array(4), [4], { dtype: "float16" }),
      /float16 data must be a Uint16Array/,
    );
    assert.throws(
      () => Tensor.from(new Float32Array(3), undefined, { dtype: "complex64" }).shape,
      /length must be even/,
    );
    assert.throws(() => Tensor.zeros([-1], "float32"), RangeError);
    assert.throws(() => Tensor.zeros([2], "float8" as DType), /unknown dtype "float8"/);
  });

  test("a scalar (shape []) has one element", () => {
    const s = Tensor.from(new Float64Array([2.5]), []);
    assert.equal(s.numel, 1);
    assert.deepEqual(s.strides, []);
    assert.equal(s.at(), 2.5);
  });

  test("transpose, permute and narrow are views of the same memory with element strides", () => {
    const t = Tensor.from(new Int32Array(Array.from({ length: 24 }, (_, i) => i)), [2, 3, 4]);
    assert.deepEqual(t.strides, [12, 4, 1]);
    const tt = t.transpose(0, 2);
    assert.deepEqual(tt.shape, [4, 3, 2]);
    assert.deepEqual(tt.strides, [1, 4, 12]);
    assert.equal(tt.isContiguous, false);
    assert.equal(tt.at(3, 1, 1), t.at(1, 1, 3));
    assert.equal(tt.data.buffer, t.data.buffer, "no copy");
    assert.deepEqual([...tt.toArray()].slice(0, 6), [0, 12, 4, 16, 8, 20]);
    const p = t.permute(1, 0, 2);
    assert.deepEqual(p.strides, [4, 12, 1]);
    assert.equal(p.at(2, 1, 3), 23);

    const n = t.narrow(2, 1, 2);
    assert.deepEqual(n.shape, [2, 3, 2]);
    assert.equal(n.byteOffset, 4);
    assert.equal(n.isContiguous, false);
    assert.deepEqual([...n.toArray()], [1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22]);
    n.data[0] = -1;
    assert.equal(t.at(0, 0, 1), -1, "writes through a view reach the original");
    assert.equal(n.data.length, 1 * 12 + 2 * 4 + 1 + 1, "data spans from the first to the last element");

    const row = t.narrow(0, 1, 1);
    assert.equal(row.isContiguous, true, "a contiguous slab stays contiguous");
    assert.equal(row.toArray()[0], 12);
    assert.equal(t.narrow(-1, 4, 0).numel, 0);
    assert.throws(() => t.narrow(2, 3, 2), /outside a dimension of size 4/);
    assert.throws(() => t.transpose(0, 3), /dimension 3 out of range/);
    assert.throws(() => t.permute(0, 0, 1), /each of 3 dimensions once/);
  });

  test("complex views keep real and imaginary parts together", () => {
    const c = Tensor.from(new Float64Array([1, -1, 2, -2, 3, -3, 4, -4]), [2, 2], { dtype: "complex128" });
    const ct = c.transpose(0, 1);
    assert.deepEqual(ct.at(0, 1), [3, -3]);
    assert.deepEqual([...ct.toArray()], [1, -1, 3, -3, 2, -2, 4, -4]);
  });

  test("a layout outside its segment is refused", () => {
    const t = Tensor.zeros([4], "float32");
    assert.throws(() => new Tensor(t.segment, { dtype: "float32", shape: [5] }), /past the end of its 16-byte storage/);
    assert.throws(
      () => new Tensor(t.segment, { dtype: "float32", shape: [2], strides: [4] }),
      /reaches byte 20, past the end/,
    );
    assert.throws(
      () => new Tensor(t.segment, { dtype: "float32", shape: [1], byteOffset: 2 }),
      /not a multiple of the item size/,
    );
    assert.throws(() => new Tensor(t.segment, { dtype: "float32", shape: [2], strides: [-1] }), /strides\[0\] = -1/);
    const broadcast = new Tensor(t.segment, { dtype: "float32", shape: [3, 4], strides: [0, 1] });
    assert.equal(broadcast.numel, 12, "stride 0 (torch's expand) is allowed");
  });

  test("release frees the memory when the last holder lets go; views then are empty", () => {
    const allocator = new SegmentAllocator();
    const t = Tensor.zeros([1024], "float32", { allocator });
    const view = t.transpose(0, 0);
    const data = t.data;
    t.release();
    t.release();
    assert.equal(view.segment.released, false, "the view still holds the segment");
    assert.equal(data.length, 1024);
    view.release();
    assert.equal(t.segment.released, true);
    assert.throws(() => t.data, /released/);
    if (nativeStatus.available) assert.equal(data.length, 0, "the old view is detached, not dangling");
    {
      using scoped = Tensor.zeros([8], "uint8", { allocator });
      assert.equal(scoped.data.length, 8);
    }
  });

  test("shared: false makes heap tensors; shared: true fails loudly without the addon", () => {
    const heap = Tensor.zeros([3], "float32", { shared: false });
    assert.equal(heap.isShared, false);
    assert.equal(heap.segment.kind, "heap");
    if (!nativeStatus.available)
      assert.throws(() => Tensor.zeros([3], "float32", { shared: true }), /shared memory unavailable/);
  });

  test("float16 and bfloat16 conversions", () => {
    const cases = [0, -0, 1, -2, 0.5, 65504, 6.103515625e-5, 5.960464477539063e-8, Infinity, -Infinity];
    for (const value of cases) assert.equal(halfToNumber(numberToHalf(value)), value, `half ${value}`);
    assert.equal(numberToHalf(65520), 0x7c00, "overflow rounds to infinity");
    assert.equal(numberToHalf(1 + 2 ** -11), 0x3c00, "ties round to even");
    assert.ok(Number.isNaN(halfToNumber(numberToHalf(NaN))));
    for (const value of [0, 1, -3.5, 2 ** 100, -(2 ** -100), Infinity])
      assert.equal(bfloat16ToNumber(numberToBfloat16(value)), value);
    assert.equal(bfloat16ToNumber(numberToBfloat16(1 + 2 ** -9)), 1, "ties round to even");
    assert.ok(Number.isNaN(bfloat16ToNumber(numberToBfloat16(NaN))));
  });
});
