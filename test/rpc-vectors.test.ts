// Shared sample frames (test/vectors/frames.json): decode each, re-encode bit-exact, check decoded values.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { Codec } from "../src/rpc/codec.js";
import { encodeFrame, FrameDecoder, type Frame } from "../src/rpc/framing.js";
import { renderVectors, VECTORS_PATH, type FrameVector } from "./vectors/make-frames.js";

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
  result_nested: { name: "stats", nested: { list: [1, [2, [3, {}]], []], flag: true, none: null }, text: "héllo ✓ \"q\"\n" },
  call_bytes_two: [Uint8Array.from(Buffer.from("hello")), Uint8Array.of(0, 1, 2, 0xff)],
  result_int: [2n ** 64n, -(2n ** 63n) - 1n, 2 ** 53 - 1, -7],
  result_float: [NaN, Infinity, -Infinity],
  call_fn: ["proxy of 1"],
  call_by_fn: [42, "x"],
  result_map: [{ 1: "one", 2: "two" }, { $x: 1 }],
  event: { done: 3, total: 10 },
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
      assert.deepEqual(frame.attachments.map((a) => Buffer.from(a).toString("hex")), vector.attachmentsHex);
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
});
