// The host's fast paths put the same bytes on the wire as the generic ones: plain calls and results as text, the
// outbox's one write per tick; and the decoder still cuts every frame wherever the reads split the stream.

import assert from "node:assert/strict";
import { once } from "node:events";
import type { Socket } from "node:net";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import { CallableTables } from "../src/rpc/callables.js";
import { Codec } from "../src/rpc/codec.js";
import { encodeFrame, FrameDecoder, type Frame } from "../src/rpc/framing.js";
import { encodeMessage } from "../src/rpc/messages.js";
import { Outbox } from "../src/rpc/outbox.js";
import { RpcPeer, type RpcPeerOptions } from "../src/rpc/peer.js";
import { callKeysJson, plainListJson, plainValueJson } from "../src/rpc/plain-json.js";
import { plainMessageJson, type PlainMessage } from "../src/rpc/plain-runs.js";
import fc from "fast-check";
import { fuzzSettings } from "./resilience-fuzz-arbitraries.js";
import { services, unixSocketPair } from "./rpc-helpers.js";

/** What the generic path writes for a call: the codec walk, then encodeFrame. */
function genericCall(id: number, args: unknown[]): Buffer {
  const callables = new CallableTables(
    () => Promise.resolve(),
    () => {},
  );
  const codec = new Codec({ callables });
  const message = { k: "call" as const, id, target: "ext", method: "ping" };
  return Buffer.concat(encodeMessage(codec, callables, message, "args", args, "args"));
}

/** Reads `count` whole frames' raw bytes from `socket`. */
async function rawFrames(socket: Socket, count: number): Promise<Buffer[]> {
  const frames: Buffer[] = [];
  let data = Buffer.alloc(0);
  while (frames.length < count) {
    const [chunk] = (await once(socket, "data")) as [Buffer];
    data = Buffer.concat([data, chunk]);
    while (data.length >= 4 && data.length >= 4 + data.readUInt32BE(0)) {
      const end = 4 + data.readUInt32BE(0);
      frames.push(data.subarray(0, end));
      data = data.subarray(end);
    }
  }
  return frames;
}

const ARG_LISTS: unknown[][] = [
  [],
  [1],
  [0, -0, 1.5, -2e300, Number.MAX_SAFE_INTEGER],
  ["", 'quote " backslash \\ newline \n', "é ü 漢字 🐍", "lone \ud800 surrogate", "\u2028"],
  [true, false, null],
  ["mixed", 3, null, false],
];

const TAGGED_LISTS: unknown[][] = [
  [undefined],
  [Number.NaN, Infinity],
  [2n ** 70n],
  [{ a: 1 }],
  [[1, 2]],
  [new Uint8Array([1, 2, 3])],
  [{ $x: 1 }],
];

describe("plain calls travel as text", () => {
  it("a call whose arguments need no tag is byte for byte the frame the codec path writes", async () => {
    const { a, b, cleanup } = await unixSocketPair();
    const peer = new RpcPeer(a);
    try {
      const lists = [...ARG_LISTS, ...TAGGED_LISTS];
      for (const args of lists) void peer.call("ext", "ping", args).catch(() => {});
      const frames = await rawFrames(b, lists.length);
      lists.forEach((args, i) => assert.deepEqual(frames[i], genericCall(i + 1, args), `args ${i}`));
    } finally {
      peer.close();
      b.destroy();
      cleanup();
    }
  });

  it("a plain list's text is JSON.stringify's, whatever its strings and numbers hold", () => {
    const item = fc.oneof(
      fc.string({ maxLength: 80, unit: "binary" }), // lone surrogates, controls, quotes and all
      fc.string({ maxLength: 80 }),
      fc.double(),
      fc.integer(),
      fc.constantFrom(true, false, null, -0, Number.MAX_SAFE_INTEGER, 1e21, 5e-324),
    );
    fc.assert(
      fc.property(fc.array(item, { maxLength: 6 }), (values) => {
        const plain = values.every((v) => typeof v !== "number" || Number.isFinite(v));
        assert.equal(plainListJson(values), plain ? JSON.stringify(values) : undefined);
      }),
      fuzzSettings(3000),
    );
  });

  it("only lists of strings, booleans, finite numbers and nulls count as plain", () => {
    for (const args of ARG_LISTS) assert.equal(plainListJson(args), JSON.stringify(args));
    for (const args of TAGGED_LISTS) assert.equal(plainListJson(args), undefined, String(args));
    assert.equal(plainListJson(new Array(2)), undefined, "holes are undefined, which the codec sends as null");
    assert.equal(plainValueJson(undefined), "null");
    assert.equal(plainValueJson(Number.NaN), undefined);
  });

  it("a host function's plain result reaches the caller as the value, undefined as null", async () => {
    const { a, b, cleanup } = await unixSocketPair();
    const values: Record<string, unknown> = { s: "é\ud800", n: -1.25, t: true, z: null, u: undefined, o: { k: [1] } };
    const host = new RpcPeer(a, {
      resolveTarget: services({ svc: { get: (name: string) => values[name], later: async () => "async" } }),
    });
    const guest = new RpcPeer(b);
    try {
      for (const [name, value] of Object.entries(values)) {
        assert.deepEqual(await guest.call("svc", "get", [name]), value === undefined ? null : value, name);
      }
      assert.equal(await guest.call("svc", "later", []), "async");
    } finally {
      host.close();
      guest.close();
      cleanup();
    }
  });
});

/** A writable that records each write as the stream hands it over (one entry per write or writev). */
function recorder(): { stream: Writable; writes: Buffer[][] } {
  const writes: Buffer[][] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      writes.push([chunk]);
      callback();
    },
    writev(chunks, callback) {
      writes.push(chunks.map((c) => c.chunk as Buffer));
      callback();
    },
  });
  return { stream, writes };
}

describe("the outbox", () => {
  it("writes the frames of one tick in one write, in order", async () => {
    const { stream, writes } = recorder();
    const outbox = new Outbox(stream);
    const expected: Buffer[] = [];
    for (let i = 0; i < 500; i++) {
      const json = JSON.stringify({ k: "call", id: i + 1, args: ["x".repeat(i % 7)] });
      outbox.pushJson(json);
      expected.push(encodeFrame(JSON.parse(json) as object)[0]!);
    }
    assert.equal(writes.length, 0, "nothing is written before the end of the tick");
    assert.ok(outbox.pendingBytes > 0);
    await new Promise((resolve) => process.nextTick(resolve));
    assert.equal(writes.length, 1, "one write for the whole burst");
    assert.deepEqual(Buffer.concat(writes[0]!), Buffer.concat(expected));
    assert.equal(outbox.pendingBytes, 0);
  });

  it("passes large chunks through uncopied, between the small frames around them", async () => {
    const { stream, writes } = recorder();
    const outbox = new Outbox(stream);
    const big = Buffer.alloc(64 * 1024, 7);
    const before = encodeFrame({ k: "event", name: "a" });
    const frame = encodeFrame({ k: "event", name: "b" }, [big]);
    const after = encodeFrame({ k: "event", name: "c" });
    outbox.push(before);
    outbox.push(frame);
    outbox.push(after);
    const long = "é".repeat(5000);
    outbox.pushJson(JSON.stringify({ k: "event", name: long })); // past the inline limit: framed on its own
    await new Promise((resolve) => setImmediate(resolve));
    const written = writes.flat();
    assert.ok(
      written.some((chunk) => chunk.buffer === big.buffer),
      "the large attachment is the caller's own memory",
    );
    const frames: Frame[] = [];
    new FrameDecoder((f) => frames.push(f)).push(Buffer.concat(written));
    assert.deepEqual(
      frames.map((f) => f.header.name),
      ["a", "b", "c", long],
    );
    assert.deepEqual(Buffer.from(frames[1]!.attachments[0]!), big);
  });

  it("writes a plain message's frame as the text encoder would, ASCII or not, batching on or off", async () => {
    const message = fc.record({
      id: fc.oneof(fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER)),
      keys: fc.option(
        fc
          .tuple(fc.string({ maxLength: 12, unit: "binary" }), fc.string({ maxLength: 12 }))
          .map(([t, m]) => callKeysJson(t, m, undefined)),
        { nil: undefined },
      ),
      json: fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.string({ unit: "binary" })).map((v) => JSON.stringify(v)),
    });
    await fc.assert(
      fc.asyncProperty(message, fc.boolean(), async (m: PlainMessage, batching) => {
        const { stream, writes } = recorder();
        const outbox = new Outbox(stream);
        outbox.batching = batching;
        outbox.pushPlain(m);
        await new Promise((resolve) => process.nextTick(resolve));
        const header = Buffer.from(plainMessageJson(m));
        const expected = Buffer.alloc(8);
        expected.writeUInt32BE(header.length + 4, 0);
        expected.writeUInt32BE(header.length, 4);
        assert.deepEqual(Buffer.concat(writes.flat()), Buffer.concat([expected, header]));
      }),
      fuzzSettings(1000),
    );
  });

  it("drops what it holds when the stream was destroyed before the end of the tick", async () => {
    const { stream, writes } = recorder();
    const outbox = new Outbox(stream);
    outbox.pushJson('{"k":"cancel","id":1}');
    stream.destroy();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(writes.length, 0);
  });
});

describe("the decoder cuts frames wherever reads split them", () => {
  const frames = [
    ...Array.from({ length: 40 }, (_, i) => encodeFrame({ k: "result", id: i + 1, value: "v".repeat(i) })),
    encodeFrame({ k: "event", name: "bytes" }, [Buffer.from("attached bytes")]),
    encodeFrame({ k: "result", id: 99, value: null }),
  ].map((chunks) => Buffer.concat(chunks));
  const stream = Buffer.concat(frames);

  it("decodes every frame wherever two chunks split the stream", () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const got: Frame[] = [];
      const decoder = new FrameDecoder((f) => got.push(f));
      decoder.push(Buffer.from(stream.subarray(0, cut)));
      decoder.push(Buffer.from(stream.subarray(cut)));
      assert.equal(got.length, frames.length, `cut at ${cut}`);
      assert.equal(decoder.bufferedBytes, 0);
      assert.deepEqual(got[40]!.header, { k: "event", name: "bytes", a: [14] });
      assert.equal(Buffer.from(got[40]!.attachments[0]!).toString(), "attached bytes");
      assert.equal(got[41]!.header.id, 99);
    }
  });

  it("decodes every frame when the stream arrives a few bytes at a time", () => {
    for (const step of [1, 3, 7, 64]) {
      const got: Frame[] = [];
      const decoder = new FrameDecoder((f) => got.push(f));
      for (let at = 0; at < stream.length; at += step) decoder.push(Buffer.from(stream.subarray(at, at + step)));
      assert.deepEqual(
        got.map((f) => f.header.id ?? f.header.name),
        [...Array.from({ length: 40 }, (_, i) => i + 1), "bytes", 99],
        `step ${step}`,
      );
    }
  });

  it("still refuses a malformed frame that follows a split one", () => {
    const bad = Buffer.concat([frames[0]!, Buffer.from([0, 0, 0, 7, 0, 0, 0, 2, 0x7b, 0x7d, 0]), frames[1]!]);
    const decoder = new FrameDecoder(() => {});
    decoder.push(Buffer.from(bad.subarray(0, 5)));
    assert.throws(() => decoder.push(Buffer.from(bad.subarray(5))), /bytes after its header/);
  });
});

describe("replies held for one write", () => {
  /** Busy-waits `ms`: a host function that holds the event loop (no timer can stand in for it). */
  function hold(ms: number): void {
    const until = performance.now() + ms;
    while (performance.now() < until);
  }

  /** A peer serving `svc.slow` and `svc.quick` on one end of a socket pair, logging its calls and socket writes. */
  async function servingPeer(options: RpcPeerOptions = {}) {
    const { a, b, cleanup } = await unixSocketPair();
    const order: string[] = [];
    const write = a.write.bind(a) as (chunk: Uint8Array) => boolean;
    a.write = ((chunk: Uint8Array) => {
      order.push("write");
      return write(chunk);
    }) as typeof a.write;
    const call = (i: number) => {
      order.push(`call ${i}`);
      return i;
    };
    const svc = {
      slow(i: number) {
        hold(5);
        return call(i);
      },
      quick: call,
    };
    const peer = new RpcPeer(a, { ...options, resolveTarget: services({ svc }) });
    const close = () => {
      peer.close();
      b.destroy();
      cleanup();
    };
    return { b, order, close };
  }

  const calls = (method: string, ids: number[]) =>
    Buffer.concat(ids.flatMap((id) => encodeFrame({ k: "call", id, target: "svc", method, args: [id] })));

  it("lets a slow host function's reply leave before the next call of its read runs", async () => {
    const { b, order, close } = await servingPeer();
    try {
      b.write(calls("slow", [1, 2, 3])); // one write: the three calls arrive in one read
      const slow = await rawFrames(b, 3);
      assert.deepEqual(order, ["call 1", "write", "call 2", "write", "call 3", "write"]);
      assert.deepEqual(
        slow.map((f) => JSON.parse(f.subarray(8).toString()).id),
        [1, 2, 3],
      );

      order.length = 0;
      const run = { k: "calls", target: "svc", method: "slow", ids: [7, 8], args: [[7], [8]] };
      b.write(Buffer.concat(encodeFrame(run))); // a run of calls to one method: one frame
      await rawFrames(b, 2);
      assert.deepEqual(order, ["call 7", "write", "call 8", "write"]);
    } finally {
      close();
    }
  });

  it("still sends the replies of a read's quick calls in one write", async () => {
    // However loaded the machine, the hold never ends here: what is checked is that quick replies are gathered.
    const { b, order, close } = await servingPeer({ holdRepliesMs: 60_000 });
    try {
      b.write(calls("quick", [4, 5, 6]));
      await rawFrames(b, 3);
      assert.deepEqual(order, ["call 4", "call 5", "call 6", "write"]);
    } finally {
      close();
    }
  });
});
