// Framing: encode/decode round trips, split and merged chunks, zero-copy attachments, malformed frames.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ProtocolError } from "../src/errors.js";
import { encodeFrame, FrameDecoder, type Frame } from "../src/rpc/framing.js";

function collect(options?: { maxFrameBytes?: number }): { decoder: FrameDecoder; frames: Frame[] } {
  const frames: Frame[] = [];
  return { decoder: new FrameDecoder((f) => frames.push(f), options), frames };
}

/** A raw frame from parts, for malformed-frame tests. */
function rawFrame(headerJson: string, tail: Uint8Array = new Uint8Array(), lengthDelta = 0): Buffer {
  const header = Buffer.from(headerJson);
  const out = Buffer.alloc(8 + header.length + tail.length);
  out.writeUInt32BE(4 + header.length + tail.length + lengthDelta, 0);
  out.writeUInt32BE(header.length, 4);
  header.copy(out, 8);
  out.set(tail, 8 + header.length);
  return out;
}

function decodeOne(bytes: Buffer): Frame {
  const { decoder, frames } = collect();
  decoder.push(bytes);
  assert.equal(frames.length, 1);
  return frames[0]!;
}

describe("encodeFrame", () => {
  test("lays out lengths, header and attachments", () => {
    const chunks = encodeFrame({ k: "cancel", id: 7 });
    assert.equal(chunks.length, 1);
    const json = '{"k":"cancel","id":7}';
    assert.equal(chunks[0]!.readUInt32BE(0), 4 + json.length);
    assert.equal(chunks[0]!.readUInt32BE(4), json.length);
    assert.equal(chunks[0]!.subarray(8).toString(), json);
  });

  test("sets a from the attachments and inlines small ones", () => {
    const header: Record<string, unknown> = { k: "result", id: 1, value: [{ $bytes: 0 }, { $bytes: 1 }], x: 1 };
    const chunks = encodeFrame(header, [Uint8Array.of(1, 2, 3), new Uint8Array(0)]);
    assert.deepEqual(header.a, [3, 0]);
    assert.equal(chunks.length, 1);
    const frame = decodeOne(chunks[0]!);
    assert.deepEqual(frame.header, header);
    assert.deepEqual(
      frame.attachments.map((a) => [...a]),
      [[1, 2, 3], []],
    );
  });

  test("passes large attachments through without copying", () => {
    const big = new Uint8Array(100_000).fill(7);
    const chunks = encodeFrame({ k: "result", id: 1, value: { $bytes: 0 }, x: 1 }, [big]);
    assert.equal(chunks.length, 2);
    assert.equal(chunks[1]!.buffer, big.buffer);
    const frame = decodeOne(Buffer.concat(chunks));
    assert.equal(frame.attachments[0]!.length, 100_000);
    assert.equal(frame.attachments[0]![99_999], 7);
  });

  test("encodes non-ASCII header text as UTF-8", () => {
    const chunks = encodeFrame({ k: "event", name: "héllo ✓", payload: null });
    assert.equal(decodeOne(chunks[0]!).header.name, "héllo ✓");
  });
});

describe("FrameDecoder", () => {
  const sample = (): Buffer[] => [
    Buffer.concat(encodeFrame({ k: "call", id: 1, target: "svc", method: "m", args: [1, "two"] })),
    Buffer.concat(encodeFrame({ k: "result", id: 2, value: { $bytes: 0 }, x: 1 }, [new Uint8Array(40_000).fill(9)])),
    Buffer.concat(encodeFrame({ k: "cancel", id: 3 })),
    Buffer.concat(
      encodeFrame({ k: "result", id: 4, value: [{ $bytes: 0 }, { $bytes: 1 }], x: 1 }, [
        Uint8Array.of(1),
        Uint8Array.of(2, 3),
      ]),
    ),
  ];

  test("decodes frames merged into one chunk, attachments as views over it", () => {
    const all = Buffer.concat(sample());
    const { decoder, frames } = collect();
    decoder.push(all);
    assert.deepEqual(
      frames.map((f) => f.header.id),
      [1, 2, 3, 4],
    );
    assert.equal(frames[1]!.attachments[0]!.buffer, all.buffer);
    assert.equal(frames[1]!.attachments[0]!.constructor, Uint8Array);
    assert.equal(decoder.bufferedBytes, 0);
  });

  test("decodes frames split one byte at a time", () => {
    const all = Buffer.concat(sample());
    const { decoder, frames } = collect();
    for (let i = 0; i < all.length; i++) decoder.push(all.subarray(i, i + 1));
    assert.deepEqual(
      frames.map((f) => f.header.id),
      [1, 2, 3, 4],
    );
    assert.deepEqual([...frames[3]!.attachments[1]!], [2, 3]);
    assert.equal(
      frames[1]!.attachments[0]!.every((b) => b === 9),
      true,
    );
  });

  test("decodes frames at every split point and across random chunkings", () => {
    const parts = sample();
    const all = Buffer.concat(parts);
    const expected = parts.map((p) => decodeOne(p));
    for (let cut = 0; cut <= all.length; cut += 97) {
      const { decoder, frames } = collect();
      decoder.push(all.subarray(0, cut));
      decoder.push(all.subarray(cut));
      assert.deepEqual(
        frames.map((f) => f.header),
        expected.map((f) => f.header),
        `cut at ${cut}`,
      );
    }
    let seed = 42;
    const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let round = 0; round < 20; round++) {
      const { decoder, frames } = collect();
      for (let at = 0; at < all.length;) {
        const n = 1 + Math.floor(random() * 5000);
        decoder.push(all.subarray(at, at + n));
        at += n;
      }
      assert.deepEqual(
        frames.map((f) => [f.header, f.attachments.map((a) => Buffer.from(a).toString("hex"))]),
        expected.map((f) => [f.header, f.attachments.map((a) => Buffer.from(a).toString("hex"))]),
      );
    }
  });

  test("refuses a frame over the limit as soon as its length arrives", () => {
    const { decoder, frames } = collect({ maxFrameBytes: 1000 });
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32BE(1001);
    assert.throws(
      () => decoder.push(prefix),
      (err: unknown) =>
        err instanceof ProtocolError && /frame bytes: 1001 exceeds the limit maxFrameBytes = 1000/.test(err.message),
    );
    assert.equal(frames.length, 0);
    assert.throws(() => decoder.push(Buffer.alloc(1)), ProtocolError, "a failed decoder stays failed");
  });

  const malformed: [string, Buffer, RegExp][] = [
    ["frame length below 4", Buffer.from([0, 0, 0, 3, 0, 0, 0]), /shorter than its header length field/],
    ["header length past the frame", rawFrame("{}", new Uint8Array(), 0).fill(0xff, 4, 8), /header length \d+ exceeds/],
    ["header not JSON", rawFrame("{nope"), /not valid JSON/],
    ["header not an object", rawFrame("[1,2]"), /must be a JSON object/],
    ["header null", rawFrame("null"), /must be a JSON object/],
    ["bytes after the header without a", rawFrame('{"k":"x"}', Uint8Array.of(1)), /no attachment list/],
    ["a not a list", rawFrame('{"a":3}', Uint8Array.of(1, 2, 3)), /must be an array/],
    ["a with a negative length", rawFrame('{"a":[-1]}'), /non-negative integer/],
    ["a with a fraction", rawFrame('{"a":[0.5]}', Uint8Array.of(1)), /non-negative integer/],
    ["attachments past the end", rawFrame('{"a":[5]}', Uint8Array.of(1, 2)), /runs past the end/],
    ["bytes left over after the attachments", rawFrame('{"a":[1]}', Uint8Array.of(1, 2)), /1 bytes left over/],
  ];
  for (const [name, bytes, pattern] of malformed) {
    test(`refuses a malformed frame: ${name}`, () => {
      const { decoder } = collect();
      assert.throws(
        () => decoder.push(bytes),
        (err: unknown) => err instanceof ProtocolError && pattern.test(err.message),
      );
    });
  }

  test("large frames (gathered in one buffer) and small ones around them, split at any point, come out whole", () => {
    let seed = 13;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const payload = (size: number, fill: number): Uint8Array => {
      const bytes = new Uint8Array(size);
      for (let i = 0; i < size; i += 997) bytes[i] = (i + fill) & 0xff;
      return bytes;
    };
    const sizes = [0, 5, 1 << 20, (1 << 20) - 20, 3 * (1 << 20) + 7];
    const sent = Array.from({ length: 12 }, (_, id) => {
      const attachments = Array.from({ length: random(3) }, () => payload(sizes[random(sizes.length)]!, id));
      const value = attachments.map((_, i) => ({ $bytes: i }));
      return { id, attachments, bytes: Buffer.concat(encodeFrame({ k: "result", id, value, x: 1 }, attachments)) };
    });
    const all = Buffer.concat(sent.map((f) => f.bytes));
    for (const pieceSizes of [[1, 3, 5, 70_000], [65_536], [1 << 20, 3_000_000], [2, 4_000_000]]) {
      const { decoder, frames } = collect({ maxFrameBytes: 8 << 20 });
      for (let at = 0; at < all.length;) {
        const n = pieceSizes[random(pieceSizes.length)]!;
        decoder.push(all.subarray(at, at + n));
        at += n;
      }
      assert.equal(frames.length, sent.length);
      for (const [i, frame] of frames.entries()) {
        assert.equal(frame.header.id, sent[i]!.id);
        assert.equal(frame.attachments.length, sent[i]!.attachments.length);
        for (const [j, attachment] of frame.attachments.entries()) {
          assert.equal(Buffer.compare(attachment, sent[i]!.attachments[j]!), 0, `frame ${i}, attachment ${j}`);
        }
      }
      assert.equal(decoder.bufferedBytes, 0);
    }
  });

  test("a large frame reports its bytes as they arrive (gathered from half on) and fails on a bad header once whole", () => {
    const header = Buffer.from('{"k":"result","id":1,"a":[5]}');
    const frame = Buffer.alloc(8 + header.length + (2 << 20));
    frame.writeUInt32BE(frame.length - 4, 0);
    frame.writeUInt32BE(header.length, 4);
    header.copy(frame, 8);
    const { decoder, frames } = collect({ maxFrameBytes: 8 << 20 });
    decoder.push(frame.subarray(0, 100_000));
    assert.equal(decoder.bufferedBytes, 100_000);
    decoder.push(frame.subarray(100_000, 1_500_000));
    assert.equal(decoder.bufferedBytes, 1_500_000);
    assert.throws(
      () => decoder.push(frame.subarray(1_500_000)),
      (err: unknown) => err instanceof ProtocolError && /left over/.test(err.message),
    );
    assert.equal(frames.length, 0);
    assert.equal(decoder.bufferedBytes, 0);
    assert.throws(() => decoder.push(Buffer.alloc(8)), ProtocolError); // broken for good: the stream must be dropped
  });

  test("a large frame's length alone, or less than half of it, reserves no buffer of that size", () => {
    const { decoder } = collect({ maxFrameBytes: 256 << 20 });
    const announced = Buffer.alloc(1 << 20);
    announced.writeUInt32BE(200 << 20, 0);
    announced.writeUInt32BE(2, 4);
    const before = process.memoryUsage().arrayBuffers;
    decoder.push(announced.subarray(0, 8));
    decoder.push(announced.subarray(8));
    assert.equal(decoder.bufferedBytes, 1 << 20);
    assert.ok(process.memoryUsage().arrayBuffers - before < 100 << 20, "a 200 MiB buffer was allocated for 1 MiB");
  });

  describe("pushLone", () => {
    /** A decoder whose lone-header handler takes every result it is offered, and what it was offered. */
    function taking(options?: { maxFrameBytes?: number; maxHeaderBytes?: number }) {
      const offered: string[] = [];
      const frames: Frame[] = [];
      const decoder = new FrameDecoder(
        (f) => frames.push(f),
        options,
        (data, start, end) => {
          const text = data.toString("utf8", start, end);
          offered.push(text);
          return text.startsWith('{"k":"result"');
        },
      );
      return { decoder, offered, frames };
    }
    const lone = Buffer.concat(encodeFrame({ k: "result", id: 7, value: 1 }));

    test("offers a chunk that is exactly one small header-alone frame, and nothing else", () => {
      const { decoder, offered } = taking();
      assert.equal(decoder.pushLone(lone), true);
      assert.deepEqual(offered, ['{"k":"result","id":7,"value":1}']);
      for (const chunk of [
        Buffer.concat([lone, lone]), // two frames
        lone.subarray(0, lone.length - 1), // part of one
        Buffer.concat(encodeFrame({ k: "result", id: 8, value: { $bytes: 0 }, x: 1 }, [Uint8Array.of(1)])),
        rawFrame("x".repeat(5000)), // past the lone size
      ]) {
        assert.equal(decoder.pushLone(chunk), false);
      }
      assert.equal(offered.length, 1);
    });

    test("takes nothing while part of a frame is buffered: the chunk continues that frame", () => {
      const { decoder, offered, frames } = taking();
      const split = Buffer.concat(encodeFrame({ k: "cancel", id: 3 }));
      decoder.push(split.subarray(0, 5));
      assert.equal(decoder.pushLone(lone), false);
      decoder.push(split.subarray(5));
      assert.deepEqual(
        frames.map((f) => f.header.id),
        [3],
      );
      assert.equal(decoder.pushLone(lone), true);
      assert.equal(offered.length, 2); // the cancel frame was offered too (by push), and declined
    });

    test("leaves a frame past a limit to push, which refuses it with its message", () => {
      for (const options of [{ maxFrameBytes: 20 }, { maxHeaderBytes: 20 }]) {
        const { decoder, offered } = taking(options);
        assert.equal(decoder.pushLone(lone), false);
        assert.throws(() => decoder.push(lone), /maxFrameBytes|maxHeaderBytes/);
        assert.deepEqual(offered, []);
      }
    });

    test("a handler's ProtocolError breaks the decoder for good, as in push", () => {
      const refusal = new ProtocolError("refused");
      const decoder = new FrameDecoder(
        () => {},
        {},
        () => {
          throw refusal;
        },
      );
      assert.throws(() => decoder.pushLone(lone), refusal);
      assert.equal(decoder.pushLone(lone), false);
      assert.throws(() => decoder.push(lone), refusal);
    });
  });

  test("validates maxFrameBytes", () => {
    assert.throws(() => new FrameDecoder(() => {}, { maxFrameBytes: 2 ** 33 }), RangeError);
  });
});
