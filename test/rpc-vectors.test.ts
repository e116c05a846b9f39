// Shared sample frames (test/vectors/frames.json): decode each, re-encode bit-exact, check decoded values.

import assert from "node:assert/strict";
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import { describe, test } from "node:test";
import { ProtocolError } from "../src/errors.js";
import { Codec } from "../src/rpc/codec.js";
import { encodeFrame, FrameDecoder, type Frame } from "../src/rpc/framing.js";
import { parseMessage } from "../src/rpc/messages.js";
import { SegmentAllocator } from "../src/tensor/allocator.js";
import { tensorCodec } from "../src/tensor/codec.js";
import { nativeStatus } from "../src/tensor/native.js";
import { PeerSegments } from "../src/tensor/peer-segments.js";
import { Tensor } from "../src/tensor/tensor.js";
import { renderVectors, TENSOR_ELEMENTS, VECTORS_PATH, type FrameVector } from "./vectors/make-frames.js";

const text = readFileSync(VECTORS_PATH, "utf8");
const vectors = JSON.parse(text) as FrameVector[];

function decode(hex: string): Frame {
  const frames: Frame[] = [];
  new FrameDecoder((f) => frames.push(f)).push(Buffer.from(hex, "hex"));
  assert.equal(frames.length, 1);
  return frames[0]!;
}

/** What each vector's value field decodes to on the host. */
const expected: Record<string, unknown> = {
  call_plain: [[1, 2, 3, 4]],
  result_nested: {
    name: "stats",
    nested: { list: [1, [2, [3, {}]], []], flag: true, none: null },
    text: 'héllo ✓ "q"\n',
  },
  call_bytes_two: [Uint8Array.from(Buffer.from("hello")), Uint8Array.of(0, 1, 2, 0xff)],
  result_int: [2n ** 64n, -(2n ** 63n) - 1n, 2 ** 53 - 1, -7],
  result_float: [NaN, Infinity, -Infinity],
  call_fn: ["proxy of 1"],
  call_by_fn: [42, "x"],
  result_map: [{ 1: "one", 2: "two" }, { $x: 1 }],
  event: { done: 3, total: 10 },
  call_stream: ["hi"],
  item: { token: "hé", raw: Uint8Array.of(1, 2) },
};

describe("shared frame vectors", () => {
  test("the file is what the generator writes", () => {
    assert.equal(text, renderVectors(), "run: node --import tsx test/vectors/make-frames.ts");
    assert.ok(vectors.length >= 10);
  });

  for (const vector of vectors) {
    test(`${vector.name}: decodes to its header and attachments, and re-encodes bit-exact`, () => {
      const frame = decode(vector.hex);
      assert.deepEqual(frame.header, vector.header);
      assert.deepEqual(
        frame.attachments.map((a) => Buffer.from(a).toString("hex")),
        vector.attachmentsHex,
      );
      const again = Buffer.concat(encodeFrame(structuredClone(frame.header), frame.attachments));
      assert.equal(again.toString("hex"), vector.hex);
    });
  }

  test("values decode to the expected host values", () => {
    const codec = new Codec({ callables: { exportFn: () => 0, importFn: (id) => `proxy of ${id}` as never } });
    for (const vector of vectors) {
      const frame = decode(vector.hex);
      const h = frame.header;
      const field = "args" in h ? "args" : "value" in h ? "value" : "payload" in h ? "payload" : undefined;
      if (field === undefined || !(vector.name in expected)) continue;
      const value = h.x === 1 ? codec.decode(h[field], frame.attachments) : h[field];
      assert.deepEqual(value, expected[vector.name], vector.name);
    }
  });

  const byName = (name: string): FrameVector => vectors.find((v) => v.name === name)!;

  test("result_tensor_copy: tensors arrive from attachments, C-ordered, with dtype, shape and framework", () => {
    const frame = decode(byName("result_tensor_copy").hex);
    const codec = new Codec({ kinds: [tensorCodec({ transport: "copy", holder: "vectors test" })] });
    const value = codec.decode(frame.header.value, frame.attachments) as { image: Tensor; mask: Tensor; label: string };
    assert.ok(value.image instanceof Tensor && value.mask instanceof Tensor);
    // The sender's transposed 2x3 view, compacted: element [i][j] of the 3x2 result is source [j][i].
    assert.deepEqual(
      [value.image.dtype, value.image.shape, value.image.strides, value.image.framework],
      ["float32", [3, 2], [2, 1], "numpy"],
    );
    assert.deepEqual([...value.image.toArray()], [0, 3, 1, 4, 2, 5]);
    assert.deepEqual([value.mask.dtype, [...value.mask.toArray()]], ["uint8", [1, 0, 0, 255]]);
    assert.equal(value.label, "cat");
    assert.equal(value.image.isShared, false, "copy mode shares nothing");
  });

  test("result_tensor_shm: the header announces 1 fd, and the tensor maps the fd that came with it", (t) => {
    const frame = decode(byName("result_tensor_shm").hex);
    assert.equal(parseMessage(frame.header).f ?? 0, 1);
    if (!nativeStatus.available) return t.skip(`no shared memory here: ${nativeStatus.reason}`);
    // What the sender would have passed on the fd socket: 24 bytes holding float32 0..5.
    const segment = new SegmentAllocator().allocate(24, { shared: true });
    new Float32Array(segment.buffer, 0, 6).set(TENSOR_ELEMENTS);
    const fd = openSync(`/proc/self/fd/${segment.fd}`, "r+");
    const codec = new Codec({ kinds: [tensorCodec({ transport: "shm", holder: "vectors test" })] });
    const tensor = codec.decode(frame.header.value, frame.attachments, [fd], closeSync) as Tensor;
    assert.deepEqual([tensor.dtype, tensor.shape, tensor.strides, tensor.byteOffset], ["float32", [2, 3], [1, 2], 0]);
    // Fortran order: element [i][j] sits at i + 2j.
    assert.deepEqual([...tensor.toArray()], [0, 2, 4, 1, 3, 5]);
    assert.equal(tensor.isShared, true, "mapped, not copied");
    tensor.release();
    segment.release();
  });

  test("result_tensor_kept: no fd goes with it; it decodes over the segment kept as 4242, and is refused elsewhere", (t) => {
    const frame = decode(byName("result_tensor_kept").hex);
    assert.equal(parseMessage(frame.header).f ?? 0, 0);
    const value = frame.header.value as { $tensor: { storage: unknown } };
    assert.deepEqual(value.$tensor.storage, { kind: "shm", size: 24, id: 4242 });
    const refused = (segments: PeerSegments | undefined, message: RegExp): void => {
      const codec = new Codec({ kinds: [tensorCodec({ transport: "shm", holder: "vectors test", segments })] });
      assert.throws(
        () => codec.decode(frame.header.value, frame.attachments),
        (error: Error) => error instanceof ProtocolError && message.test(error.message),
      );
    };
    refused(undefined, /segment 4242 without an fd/);
    if (!nativeStatus.available) return t.skip(`no shared memory here: ${nativeStatus.reason}`);
    const allocator = new SegmentAllocator();
    refused(new PeerSegments(nativeStatus.addon), /segment 4242, which this extension was never given/);
    // A book that keeps 4242 (the real one keys segments by inode, which a vector cannot fix).
    const segment = allocator.allocate(24, { shared: true });
    new Float32Array(segment.buffer, 0, 6).set(TENSOR_ELEMENTS);
    const kept = {
      resolve: (id: number) => (assert.equal(id, 4242), segment.retain(), segment),
    } as unknown as PeerSegments;
    const codec = new Codec({ kinds: [tensorCodec({ transport: "shm", holder: "vectors test", segments: kept })] });
    const tensor = codec.decode(frame.header.value, frame.attachments) as Tensor;
    assert.equal(tensor.segment, segment, "the kept segment itself: nothing mapped again");
    assert.deepEqual([...tensor.toArray()], [0, 2, 4, 1, 3, 5]);
    tensor.release();
    segment.release();
  });

  test("call_kw_plain, call_kw: keyword arguments pass the call check and decode with args, sharing the attachments", () => {
    const plain = parseMessage(decode(byName("call_kw_plain").hex).header);
    assert.equal(plain.k, "call");
    assert.deepEqual([plain.args, plain.kw, plain.x], [[[1, 2, 3]], { axis: 0, keepdims: true }, undefined]);
    const frame = decode(byName("call_kw").hex);
    const h = parseMessage(frame.header);
    assert.ok(h.k === "call");
    assert.deepEqual(frame.header.a, [2, 3], "args' bytes first, then kw's");
    const codec = new Codec();
    const [args, kw] = codec.decodeAll([h.args, h.kw], frame.attachments);
    assert.deepEqual(args, [Uint8Array.from(Buffer.from("ab"))]);
    assert.deepEqual(kw, {
      axis: 0,
      weights: Uint8Array.from(Buffer.from("xyz")),
      big: 2n ** 64n,
      opts: { names: ["a", "é"], none: null },
    });
  });

  test("release_segs: the segment ids a release carries", () => {
    const release = parseMessage(decode(byName("release_segs").hex).header);
    assert.deepEqual(release.k === "release" ? release.segs : undefined, [4242, 4243]);
  });

  test("result_bytes_lent: 1 fd; the host copies the lent memfd out and hands number 3 back", (t) => {
    const frame = decode(byName("result_bytes_lent").hex);
    assert.equal(parseMessage(frame.header).f ?? 0, 1);
    if (!nativeStatus.available) return t.skip(`no memfds here: ${nativeStatus.reason}`);
    const native = nativeStatus.addon;
    // What the guest would have passed on the fd socket: its pooled memfd, sealed against resizing, not writing.
    const fd = native.memfdCreate("vectors test", 64 * 1024);
    writeSync(fd, Buffer.from("lent!!"), 0, 6, 0);
    const returned: number[] = [];
    const codec = new Codec({
      bytesFd: { threshold: 1, maxBytes: 1 << 20, native, returnLent: (n) => returned.push(n) },
    });
    const value = codec.decode(frame.header.value, frame.attachments, [fd], closeSync) as Uint8Array;
    assert.equal(Buffer.from(value).toString(), "lent!!");
    assert.deepEqual(returned, [3]);
  });

  test("release_bytes: the pooled memfd numbers a release hands back", () => {
    const release = parseMessage(decode(byName("release_bytes").hex).header);
    assert.deepEqual(release.k === "release" ? release.bytes : undefined, [3, 4]);
  });
});
