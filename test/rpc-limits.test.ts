// The protocol limits in memory: option resolution, the decoder's caps, the depth walk, fds per frame, the peer.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { validateExtensionOptions } from "../src/config/validate.js";
import { ConfigError, ProtocolError } from "../src/errors.js";
import { MAX_DEPTH } from "../src/rpc/codec.js";
import { encodeFrame, FrameDecoder, type Frame } from "../src/rpc/framing.js";
import { DEFAULT_LIMITS, MAX_HEADER_DEPTH, nestsDeeperThan, resolveLimits } from "../src/rpc/limits.js";
import { parseMessage } from "../src/rpc/messages.js";
import { validateDescriptor, MAX_BROADCAST_BYTES } from "../src/tensor/descriptor.js";
import { fixture } from "./helpers.js";
import { deferred, peerPair } from "./rpc-helpers.js";

/** A raw frame with this exact JSON header text and these attachments. */
function rawFrame(header: string, attachments: Uint8Array[] = []): Buffer {
  const head = Buffer.from(header, "utf8");
  const total = attachments.reduce((sum, a) => sum + a.byteLength, 0);
  const prefix = Buffer.alloc(8);
  prefix.writeUInt32BE(4 + head.length + total, 0);
  prefix.writeUInt32BE(head.length, 4);
  return Buffer.concat([prefix, head, ...attachments]);
}

function nested(depth: number): unknown {
  let value: unknown = 0;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

function decode(frame: Buffer, limits: ConstructorParameters<typeof FrameDecoder>[1] = {}): Frame[] {
  const frames: Frame[] = [];
  new FrameDecoder((f) => frames.push(f), limits).push(frame);
  return frames;
}

describe("resolveLimits", () => {
  test("fills every limit from the defaults and keeps the ones given", () => {
    assert.deepEqual(resolveLimits(), DEFAULT_LIMITS);
    assert.equal(resolveLimits({ maxFrameBytes: 2 ** 30 }).maxFrameBytes, 2 ** 30);
    assert.equal(resolveLimits({ maxFrameBytes: 2 ** 30 }).maxAttachments, DEFAULT_LIMITS.maxAttachments);
  });

  test("refuses an unknown limit and one out of its range, naming it", () => {
    assert.throws(() => resolveLimits({ maxFrames: 1 } as never), /unknown limit "maxFrames"/);
    assert.throws(() => resolveLimits({ maxFrameBytes: 2 ** 33 }), /maxFrameBytes must be an integer from 64 to/);
    assert.throws(() => resolveLimits({ maxSegments: -1 }), /maxSegments must be an integer/);
    assert.throws(() => resolveLimits({ maxLineChars: 1.5 }), /maxLineChars must be an integer/);
  });

  test("load options: protocolLimits are validated at the boundary into a ConfigError whose key names the limit", () => {
    const base = { name: "x", modulePath: fixture("echo_ext") };
    assert.deepEqual(validateExtensionOptions(base).protocolLimits, DEFAULT_LIMITS);
    assert.equal(
      validateExtensionOptions({ ...base, protocolLimits: { maxHeaderBytes: 1024 } }).protocolLimits.maxHeaderBytes,
      1024,
    );
    assert.throws(
      () => validateExtensionOptions({ ...base, protocolLimits: { maxFdsPerFrame: 1e9 } }),
      (err: unknown) => err instanceof ConfigError && err.key === "protocolLimits.maxFdsPerFrame",
    );
    assert.throws(
      () => validateExtensionOptions({ ...base, protocolLimits: { bogus: 1 } as never }),
      (err: unknown) => err instanceof ConfigError && err.key === "protocolLimits.bogus",
    );
    assert.throws(
      () => validateExtensionOptions({ ...base, protocolLimits: 5 as never }),
      (err: unknown) => err instanceof ConfigError && err.key === "protocolLimits",
    );
  });
});

describe("FrameDecoder limits", () => {
  test("a header at maxHeaderBytes is accepted; one byte more is refused when its length arrives, before the header does", () => {
    const header = `{"k":"event","name":"e","payload":"${"x".repeat(100)}"}`;
    assert.equal(decode(rawFrame(header), { maxHeaderBytes: header.length }).length, 1);
    const decoder = new FrameDecoder(() => assert.fail("no frame"), { maxHeaderBytes: header.length - 1 });
    const frame = rawFrame(header);
    assert.throws(
      () => decoder.push(frame.subarray(0, 8)),
      (err: unknown) =>
        err instanceof ProtocolError &&
        err.message === `frame header bytes: ${header.length} exceeds the limit maxHeaderBytes = ${header.length - 1}`,
    );
  });

  test("an oversized header split from its prefix is still refused once the frame is in", () => {
    const header = `{"k":"event","name":"e","payload":"${"x".repeat(100)}"}`;
    const frame = rawFrame(header);
    const decoder = new FrameDecoder(() => assert.fail("no frame"), { maxHeaderBytes: 64 });
    decoder.push(frame.subarray(0, 5));
    assert.throws(
      () => decoder.push(frame.subarray(5)),
      /frame header bytes: 137 exceeds the limit maxHeaderBytes = 64/,
    );
  });

  test("maxAttachments attachments are accepted; one more is refused before any view is made", () => {
    const empties = (n: number) => `{"k":"event","name":"e","payload":null,"a":[${new Array(n).fill(0).join(",")}]}`;
    const frames = decode(rawFrame(empties(1000)), { maxAttachments: 1000 });
    assert.equal(frames[0]!.attachments.length, 1000);
    assert.throws(
      () => decode(rawFrame(empties(1001)), { maxAttachments: 1000 }),
      /frame attachments: 1001 exceeds the limit maxAttachments = 1000/,
    );
  });

  test("the default caps: 65536 attachments and a 16 MiB header", () => {
    assert.equal(DEFAULT_LIMITS.maxAttachments, 65_536);
    assert.equal(DEFAULT_LIMITS.maxHeaderBytes, 16 * 1024 * 1024);
    assert.equal(new FrameDecoder(() => {}).maxFrameBytes, 256 * 1024 * 1024);
  });

  test(`a header nested ${MAX_HEADER_DEPTH} levels is parsed; one level deeper is refused with the limit named`, () => {
    const at = JSON.stringify({ k: "event", name: "e", payload: nested(MAX_HEADER_DEPTH - 1) });
    assert.equal(decode(rawFrame(at)).length, 1);
    const over = JSON.stringify({ k: "event", name: "e", payload: nested(MAX_HEADER_DEPTH) });
    assert.throws(
      () => decode(rawFrame(over)),
      new RegExp(`nests deeper than the limit maxDepth = ${MAX_HEADER_DEPTH} levels`),
    );
  });

  test("encodeFrame's frames pass the decoder's limits unchanged (the writer and the reader agree)", () => {
    const chunks = encodeFrame({ k: "result", id: 1, value: { $bytes: 0 }, x: 1 }, [new Uint8Array(10)]);
    assert.equal(decode(Buffer.concat(chunks)).length, 1);
  });
});

describe("nestsDeeperThan", () => {
  test("counts arrays and objects alike, the value itself as level 1", () => {
    assert.equal(nestsDeeperThan(0, 0), false);
    assert.equal(nestsDeeperThan([], 1), false);
    assert.equal(nestsDeeperThan([], 0), true);
    assert.equal(nestsDeeperThan({ a: [{ b: 1 }] }, 3), false);
    assert.equal(nestsDeeperThan({ a: [{ b: {} }] }, 3), true);
    assert.equal(nestsDeeperThan([1, "s", null, [2, [3]]], 3), false);
  });

  test("walks a million levels without overflowing the stack", () => {
    assert.equal(nestsDeeperThan(nested(1_000_000), 999_999), true);
    assert.equal(nestsDeeperThan(nested(1_000_000), 1_000_000), false);
  });
});

describe("fds per frame", () => {
  test("parseMessage accepts fd counts up to the limit and names maxFdsPerFrame past it", () => {
    assert.equal(parseMessage({ k: "cancel", id: 1, f: 16 }, 16).f, 16);
    assert.throws(
      () => parseMessage({ k: "cancel", id: 1, f: 17 }, 16),
      /file descriptors announced by a frame: 17 exceeds the limit maxFdsPerFrame = 16/,
    );
    assert.throws(() => parseMessage({ k: "cancel", id: 1, f: -1 }, 16), /"f" must be a count of file descriptors/);
  });
});

describe("peer: depth of untagged values", () => {
  test(`an event without tags nested ${MAX_DEPTH} levels is delivered; ${MAX_DEPTH + 1} closes the peer with a ProtocolError`, async () => {
    const delivered = deferred<unknown>();
    const failed = deferred<ProtocolError>();
    const { a, b, streams } = peerPair(
      {},
      { onControl: (m) => delivered.resolve(m), onProtocolError: (e) => failed.resolve(e) },
    );
    streams.a.write(rawFrame(JSON.stringify({ k: "event", name: "deep", payload: nested(MAX_DEPTH) })));
    const message = (await delivered.promise) as { payload: unknown };
    assert.equal(nestsDeeperThan(message.payload, MAX_DEPTH), false);
    assert.equal(b.state, "open");
    streams.a.write(rawFrame(JSON.stringify({ k: "event", name: "deep", payload: nested(MAX_DEPTH + 1) })));
    const error = await failed.promise;
    assert.match(
      error.message,
      new RegExp(`event message holds a value nested deeper than the limit maxDepth = ${MAX_DEPTH} levels`),
    );
    assert.equal(b.state, "closed");
    a.close();
  });

  test("a result and a call without tags are held to the same depth", async () => {
    for (const header of [
      { k: "call", id: 1, target: "svc", method: "m", args: [nested(MAX_DEPTH)] },
      { k: "result", id: 1, value: nested(MAX_DEPTH + 1) },
    ]) {
      const failed = deferred<ProtocolError>();
      const { a, b, streams } = peerPair({}, { onProtocolError: (e) => failed.resolve(e) });
      streams.a.write(rawFrame(JSON.stringify(header)));
      assert.match(
        (await failed.promise).message,
        new RegExp(`${header.k} message holds a value nested deeper than the limit maxDepth`),
      );
      assert.equal(b.state, "closed");
      a.close();
    }
  });
});

describe("tensor descriptors: elements bounded by the storage", () => {
  const context = { fdCount: 1, attachmentSizes: [] };
  const descriptor = (shape: number[], strides: number[], size: number) => ({
    dtype: "uint8",
    shape,
    strides,
    offset: 0,
    storage: { kind: "shm", fd: 0, size },
  });

  test(`stride-0 broadcasting may claim up to ${MAX_BROADCAST_BYTES} bytes of elements over a small storage`, () => {
    assert.equal(
      validateDescriptor(descriptor([MAX_BROADCAST_BYTES], [0], 4096), context).extent.numel,
      MAX_BROADCAST_BYTES,
    );
    assert.throws(
      () => validateDescriptor(descriptor([MAX_BROADCAST_BYTES + 1], [0], 4096), context),
      /claims 67108865 elements \(67108865 bytes\) over 4096 bytes of storage, past the limit maxBroadcastBytes = 67108864/,
    );
  });

  test("overlapping strides are bounded the same way, and a storage larger than the allowance bounds by itself", () => {
    assert.throws(
      () => validateDescriptor(descriptor([16384, 16384], [1, 1], 32768), context),
      /past the limit maxBroadcastBytes/,
    );
    const big = 128 * 1024 * 1024;
    assert.equal(validateDescriptor(descriptor([big], [0], big), context).extent.numel, big);
    assert.throws(
      () => validateDescriptor(descriptor([big + 1], [0], big), context),
      /past the limit maxBroadcastBytes/,
    );
  });
});
