// Incoming tensor descriptors: what passes, and every way a hostile one is refused before anything is mapped.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { validateDescriptor, type DescriptorContext } from "../src/tensor/descriptor.js";
import { checkLayout } from "../src/tensor/layout.js";

const context: DescriptorContext = { fdCount: 1, attachmentSizes: [48] };

function base(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    dtype: "float32",
    shape: [3, 4],
    strides: [4, 1],
    offset: 0,
    storage: { kind: "shm", fd: 0, size: 48 },
    ...overrides,
  };
}

function refused(raw: unknown, pattern: RegExp, ctx: DescriptorContext = context): void {
  assert.throws(
    () => validateDescriptor(raw, ctx),
    (error: Error & { code?: string }) => {
      assert.equal(error.name, "ProtocolError");
      assert.equal(error.code, "ERR_PYISOLATE_PROTOCOL");
      assert.match(error.message, pattern);
      return true;
    },
  );
}

describe("tensor descriptor validation", () => {
  test("accepts shm, bytes and cuda storage, and keeps framework and requiresGrad", () => {
    const shm = validateDescriptor(base({ framework: "torch", requiresGrad: true }), context);
    assert.deepEqual(shm.descriptor, { ...base(), framework: "torch", requiresGrad: true });
    assert.deepEqual(shm.extent, { numel: 12, span: 12 });
    const bytes = validateDescriptor(base({ storage: { kind: "bytes", attachment: 0 } }), context);
    assert.deepEqual(bytes.descriptor.storage, { kind: "bytes", attachment: 0 });
    const cuda = validateDescriptor(
      base({ storage: { kind: "cuda", device: 0, size: 48, ipc: { handle: "opaque" } } }),
      context,
    );
    assert.equal(cuda.descriptor.storage.kind, "cuda");
  });

  test("accepts non-contiguous, broadcast, offset and zero-size layouts that fit", () => {
    assert.equal(validateDescriptor(base({ shape: [4, 3], strides: [1, 4] }), context).extent.span, 12);
    assert.equal(validateDescriptor(base({ shape: [3, 4], strides: [0, 1], offset: 32 }), context).extent.numel, 12);
    assert.equal(validateDescriptor(base({ shape: [2, 2], strides: [4, 1], offset: 4 * 6 }), context).extent.span, 6);
    assert.equal(
      validateDescriptor(base({ shape: [0, 1e15], strides: [1e15, 1], offset: 48 }), context).extent.numel,
      0,
    );
    assert.equal(validateDescriptor(base({ shape: [], strides: [], offset: 44 }), context).extent.numel, 1);
  });

  test("refuses layouts that reach past the storage", () => {
    refused(
      base({ shape: [3, 5], strides: [5, 1] }),
      /layout the tensor reaches byte 60, past the end of its 48-byte storage/,
    );
    refused(base({ offset: 4 }), /reaches byte 52/);
    refused(base({ shape: [2, 2], strides: [1, 12] }), /past the end/);
    refused(base({ shape: [], strides: [], offset: 48 }), /past the end/);
    refused(base({ shape: [0], strides: [1], offset: 52 }), /byte offset 52 is past the end/);
    refused(base({ storage: { kind: "bytes", attachment: 0 }, dtype: "float64" }), /reaches byte 96/);
    refused(base({ storage: { kind: "cuda", device: 0, size: 8, ipc: {} } }), /past the end of its 8-byte storage/);
  });

  test("refuses values that would overflow: huge shapes, strides and offsets", () => {
    const big = 2 ** 52;
    refused(base({ shape: [big, big], strides: [1, 1] }), /elements is too many|past the end/);
    refused(base({ shape: [2, 2], strides: [big, 1] }), /past the end/);
    refused(base({ shape: [2 ** 31, 2 ** 31, 2 ** 31], strides: [0, 0, 0] }), /too many/);
    refused(base({ offset: 2 ** 60 }), /offset must be a non-negative integer/);
    refused(base({ shape: [1e300], strides: [1] }), /shape\[0\] must be a non-negative integer/);
    refused(base({ storage: { kind: "shm", fd: 0, size: 2 ** 64 } }), /storage.size must be a non-negative integer/);
    refused(base({ shape: new Array(65).fill(1), strides: new Array(65).fill(1) }), /more than 64/);
  });

  test("checkLayout's doubles agree with BigInt arithmetic around 2^53, at and beside each boundary", () => {
    const MAX = BigInt(Number.MAX_SAFE_INTEGER);
    /** The same rules worked out in BigInt only: the extent, or the error checkLayout must throw. */
    function reference(shape: number[], strides: number[], offset: number, item: number, capacity: number) {
      let numel = 1n;
      let last = 0n;
      shape.forEach((n, i) => {
        numel *= BigInt(n);
        if (n > 0) last += BigInt(n - 1) * BigInt(strides[i]!);
      });
      if (numel > MAX) return /too many/;
      if (numel === 0n) return offset > capacity ? /past the end/ : { numel: 0, span: 0 };
      const end = BigInt(offset) + (last + 1n) * BigInt(item);
      return end > BigInt(capacity) ? /past the end/ : { numel: Number(numel), span: Number(last + 1n) };
    }
    let seed = 7;
    const random = (below: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % below;
    };
    const near = (power: number): number => Math.max(0, 2 ** power + random(5) - 2);
    let fallbacks = 0;
    for (let round = 0; round < 2000; round++) {
      const dims = 1 + random(3);
      const shape = Array.from({ length: dims }, () => near(random(28)));
      const strides = Array.from({ length: dims }, () => (random(4) === 0 ? 0 : near(random(54))));
      const item = [1, 2, 4, 8][random(4)]!;
      const offset = item * random(4);
      const exact = reference(shape, strides, offset, item, Number.MAX_SAFE_INTEGER);
      const end = exact instanceof RegExp ? Number.MAX_SAFE_INTEGER : offset + exact.span * item;
      for (const capacity of [Number.MAX_SAFE_INTEGER, Math.max(0, end - 1), Math.min(end, Number.MAX_SAFE_INTEGER)]) {
        const expected = reference(shape, strides, offset, item, capacity);
        const what = JSON.stringify({ shape, strides, offset, item, capacity });
        if (expected instanceof RegExp) {
          fallbacks++;
          assert.throws(() => checkLayout(shape, strides, offset, item, capacity), expected, what);
        } else assert.deepEqual(checkLayout(shape, strides, offset, item, capacity), expected, what);
      }
    }
    assert.ok(fallbacks > 500, `the rounds reach the refusals too (${fallbacks})`);
  });

  test("refuses negative, fractional and non-number entries", () => {
    refused(base({ shape: [-3, 4] }), /shape\[0\] must be a non-negative integer \(got -3\)/);
    refused(base({ strides: [4, -1] }), /strides\[1\]/);
    refused(base({ strides: [4, 0.5] }), /strides\[1\]/);
    refused(base({ shape: ["3", 4] }), /shape\[0\]/);
    refused(base({ offset: -4 }), /offset/);
    refused(base({ offset: 2 }), /not a multiple of the item size 4/);
    refused(base({ strides: [1] }), /strides has 1 entries for 2 dimensions/);
    refused(base({ shape: { length: 2 } }), /shape must be a list/);
  });

  test("refuses unknown dtypes, storage kinds and bad indexes", () => {
    refused(base({ dtype: "float8" }), /dtype must be one of bool, /);
    refused(base({ dtype: "__proto__" }), /dtype must be one of/);
    refused(base({ storage: { kind: "file", fd: 0, size: 48 } }), /storage.kind must be "shm", "bytes" or "cuda"/);
    refused(base({ storage: { kind: "shm", fd: 1, size: 48 } }), /storage.fd must index one of 1/);
    refused(base({ storage: { kind: "shm", fd: 0, size: 48 } }), /storage.fd must index one of 0/, {
      fdCount: 0,
      attachmentSizes: [],
    });
    refused(base({ storage: { kind: "bytes", attachment: 1 } }), /storage.attachment must index one of 1/);
    refused(base({ storage: { kind: "cuda", device: -1, size: 48, ipc: {} } }), /storage.device/);
    refused(base({ storage: { kind: "cuda", device: 0, size: 48 } }), /storage.ipc must be an object/);
    refused(base({ framework: "jax" }), /framework must be "numpy" or "torch"/);
    refused(base({ requiresGrad: "yes" }), /requiresGrad must be a boolean/);
    refused(null, /must be an object/);
    refused([], /must be an object/);
  });
});
