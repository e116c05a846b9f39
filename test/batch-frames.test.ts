// Batch frames (docs/protocol.md#batches): the plain calls and results of one tick leave in one frame, in order, and a
// batch is checked whole before any of it runs.

import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { ProtocolError, type Extension } from "../src/index.js";
import { encodeFrame, FrameDecoder } from "../src/rpc/framing.js";
import { parseMessage } from "../src/rpc/messages.js";
import { Outbox } from "../src/rpc/outbox.js";
import { callKeysJson } from "../src/rpc/plain-json.js";
import type { PlainMessage } from "../src/rpc/plain-runs.js";
import { fixture, makeManager } from "./helpers.js";
import { peerPair, services } from "./rpc-helpers.js";
import { fuzzSettings } from "./resilience-fuzz-arbitraries.js";

/** An outbox over a stream that decodes what it is given; `headers()` waits for the tick's flush. */
function tappedOutbox(batching: boolean): { outbox: Outbox; headers: () => Promise<Record<string, unknown>[]> } {
  const seen: Record<string, unknown>[] = [];
  const decoder = new FrameDecoder((frame) => seen.push(frame.header));
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      decoder.push(chunk);
      callback();
    },
  });
  const outbox = new Outbox(sink);
  outbox.batching = batching;
  return { outbox, headers: () => new Promise((resolve) => setImmediate(() => resolve(seen))) };
}

const result = (id: number, value: unknown): PlainMessage => ({ id, keys: undefined, json: JSON.stringify(value) });
const call = (id: number, method: string, args: unknown[]): PlainMessage => ({
  id,
  keys: callKeysJson("svc", method, undefined),
  json: JSON.stringify(args),
});
/** The messages a frame carried, one by one, as [kind, id]. */
const spread = (header: Record<string, unknown>): [unknown, unknown][] => {
  if (header.k === "results" || header.k === "calls")
    return (header.ids as number[]).map((id) => [header.k === "results" ? "result" : "call", id]);
  if (header.k === "batch") return (header.m as Record<string, unknown>[]).map((m) => [m.k, m.id]);
  return [[header.k, header.id]];
};

describe("the outbox with batching on", () => {
  it("sends the plain results of one tick as one results frame, in order", async () => {
    const { outbox, headers } = tappedOutbox(true);
    for (let id = 1; id <= 5; id++) outbox.pushPlain(result(id, id * 10));
    assert.deepEqual(await headers(), [{ k: "results", ids: [1, 2, 3, 4, 5], values: [10, 20, 30, 40, 50] }]);
  });

  it("sends calls of one method as one calls frame, and a mixed run as one batch", async () => {
    const { outbox, headers } = tappedOutbox(true);
    outbox.pushPlain(call(1, "ping", [1]));
    outbox.pushPlain(call(2, "ping", ["two", null]));
    await headers();
    outbox.pushPlain(call(3, "ping", []));
    outbox.pushPlain(call(4, "pong", [4]));
    outbox.pushPlain(result(9, true));
    const written = await headers();
    assert.deepEqual(written[0], {
      k: "calls",
      target: "svc",
      method: "ping",
      ids: [1, 2],
      args: [[1], ["two", null]],
    });
    assert.deepEqual(written[1], {
      k: "batch",
      m: [
        { k: "call", id: 3, target: "svc", method: "ping", args: [] },
        { k: "call", id: 4, target: "svc", method: "pong", args: [4] },
        { k: "result", id: 9, value: true },
      ],
    });
  });

  it("closes the run before any other frame, so that frames keep their order", async () => {
    const { outbox, headers } = tappedOutbox(true);
    outbox.pushPlain(result(1, 1));
    outbox.pushPlain(result(2, 2));
    outbox.push(encodeFrame({ k: "event", name: "between", payload: null }));
    outbox.pushPlain(result(3, 3));
    outbox.pushJson(JSON.stringify({ k: "cancel", id: 9 }));
    const written = await headers();
    assert.deepEqual(written.flatMap(spread), [
      ["result", 1],
      ["result", 2],
      ["event", undefined],
      ["result", 3],
      ["cancel", 9],
    ]);
    assert.deepEqual(
      written.map((h) => h.k),
      ["results", "event", "result", "cancel"],
    );
  });

  it("sends a lone plain message, and one of 4 KiB or more, as an ordinary frame", async () => {
    const { outbox, headers } = tappedOutbox(true);
    outbox.pushPlain(result(1, "x".repeat(5000)));
    await headers();
    outbox.pushPlain(result(2, "short"));
    const written = await headers();
    assert.deepEqual(
      written.map((h) => [h.k, h.id]),
      [
        ["result", 1],
        ["result", 2],
      ],
    );
  });

  it("starts a new frame past 60 KiB of messages", async () => {
    const { outbox, headers } = tappedOutbox(true);
    for (let id = 1; id <= 100; id++) outbox.pushPlain(result(id, "y".repeat(2000)));
    const written = await headers();
    assert.ok(written.length >= 3, `${written.length} frames`);
    assert.ok(written.every((h) => h.k === "results"));
    assert.deepEqual(
      written.flatMap((h) => h.ids as number[]),
      Array.from({ length: 100 }, (_, i) => i + 1),
    );
  });

  it("writes every plain message as its own frame while batching is off", async () => {
    const { outbox, headers } = tappedOutbox(false);
    for (let id = 1; id <= 3; id++) outbox.pushPlain(result(id, id));
    outbox.pushPlain(call(4, "ping", [1]));
    assert.deepEqual(
      (await headers()).map((h) => h.k),
      ["result", "result", "result", "call"],
    );
  });
});

describe("two peers that read batches", () => {
  it("answer a burst of calls with batch frames both ways, each call its own value", async () => {
    // The hold never ends here (holdRepliesMs): on a loaded machine 200 calls could run past 1 ms.
    const math = services({ math: { twice: (x: number) => 2 * x } });
    const pair = peerPair({}, { resolveTarget: math, holdRepliesMs: 60_000 });
    pair.a.enableBatches();
    pair.b.enableBatches();
    const values = await Promise.all(Array.from({ length: 200 }, (_, i) => pair.a.call("math", "twice", [i])));
    assert.deepEqual(
      values,
      Array.from({ length: 200 }, (_, i) => 2 * i),
    );
    assert.ok(pair.aToB.kinds().includes("calls"), "the calls went in runs");
    assert.ok(pair.bToA.kinds().includes("results"), "the results came back in runs");
    pair.a.close();
    pair.b.close();
  });

  it("refuse a batch with one bad message before running any call in it", async () => {
    let ran = 0;
    const failures: ProtocolError[] = [];
    const pair = peerPair(
      {},
      {
        resolveTarget: services({ counter: { bump: () => ++ran } }),
        onProtocolError: (error) => failures.push(error),
      },
    );
    const call = { k: "call", id: 1, target: "counter", method: "bump", args: [] };
    const frame = encodeFrame({ k: "batch", m: [call, { ...call, id: 2 }, { k: "event", name: "x", payload: 1 }] });
    pair.streams.a.write(Buffer.concat(frame));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(ran, 0, "no call of the refused batch ran");
    assert.equal(failures.length, 1);
    assert.match(failures[0]!.message, /batch: "event" messages cannot be batched/);
    pair.a.close();
  });
});

describe("the host's check of a batch", () => {
  const inner = fc.oneof(
    fc.record(
      {
        k: fc.constantFrom("call", "result", "error", "event", "batch", "cancel", "item"),
        id: fc.integer({ min: -1, max: 3 }),
        target: fc.constant("svc"),
        method: fc.constantFrom("echo", "boom"),
        args: fc.array(fc.jsonValue(), { maxLength: 2 }),
        value: fc.jsonValue(),
        error: fc.oneof(fc.record({ type: fc.string(), message: fc.string() }), fc.jsonValue()),
        x: fc.constant(1),
        f: fc.integer({ min: 0, max: 2 }),
        m: fc.jsonValue(),
      },
      { requiredKeys: ["k"] },
    ),
    fc.jsonValue(),
  );

  it("accepts only batches of plain calls, results and errors, and refuses anything else as a ProtocolError", () => {
    const seen = { accepted: 0, refused: 0 };
    fc.assert(
      fc.property(fc.oneof(fc.array(inner, { maxLength: 5 }), fc.jsonValue()), (m) => {
        let parsed;
        try {
          parsed = parseMessage({ k: "batch", m });
        } catch (err) {
          assert.ok(err instanceof ProtocolError, String(err));
          seen.refused++;
          return;
        }
        seen.accepted++;
        assert.equal(parsed.k, "batch");
        const messages = (parsed as unknown as { m: Record<string, unknown>[] }).m;
        assert.ok(messages.length >= 1);
        for (const message of messages) {
          assert.ok(["call", "result", "error"].includes(message.k as string));
          assert.ok(message.x === undefined && message.a === undefined && message.f === undefined);
        }
      }),
      fuzzSettings(2000),
    );
    assert.ok(seen.accepted > 0 && seen.refused > 0, JSON.stringify(seen));
  });
});

describe("the host's check of a run of calls or results", () => {
  it("accepts runs whose ids and entries line up, and refuses anything else as a ProtocolError", () => {
    // Mostly well-formed runs (small ids, lists of argument lists, no extras), so that both verdicts are reached.
    const ids = fc.oneof(
      { arbitrary: fc.array(fc.integer({ min: -1, max: 9 }), { minLength: 1, maxLength: 4 }), weight: 4 },
      fc.array(fc.oneof(fc.integer({ min: -1, max: 9 }), fc.jsonValue()), { maxLength: 4 }),
      fc.jsonValue(),
    );
    const entries = fc.oneof(
      { arbitrary: fc.array(fc.array(fc.jsonValue(), { maxLength: 2 }), { minLength: 1, maxLength: 4 }), weight: 4 },
      fc.array(fc.oneof(fc.array(fc.jsonValue(), { maxLength: 2 }), fc.jsonValue()), { maxLength: 4 }),
      fc.jsonValue(),
    );
    const extras = fc.oneof(
      { arbitrary: fc.constant({}), weight: 3 },
      fc.record(
        { x: fc.constant(1), f: fc.constant(0), kw: fc.constant({}), stream: fc.constant(4) },
        { requiredKeys: [] },
      ),
    );
    const seen = { calls: 0, results: 0, refused: 0 };
    fc.assert(
      fc.property(
        fc.boolean(),
        ids,
        entries,
        extras,
        fc.constantFrom("svc", 5),
        (asCalls, ids, entries, extras, target) => {
          const header = asCalls
            ? { k: "calls", target, method: "m", ids, args: entries, ...extras }
            : { k: "results", ids, values: entries, ...extras };
          let parsed;
          try {
            parsed = parseMessage(header) as unknown as Record<string, unknown[]>;
          } catch (err) {
            assert.ok(err instanceof ProtocolError, String(err));
            seen.refused++;
            return;
          }
          seen[asCalls ? "calls" : "results"]++;
          const list = parsed[asCalls ? "args" : "values"]!;
          assert.ok(Array.isArray(parsed.ids) && parsed.ids.length >= 1 && parsed.ids.length === list.length);
          assert.ok(parsed.ids.every((id) => Number.isSafeInteger(id) && (id as number) >= 1));
          if (asCalls) assert.ok(list.every((args) => Array.isArray(args)) && typeof target === "string");
          // A run of calls refuses all four; results have no keyword, stream or fn fields to refuse, only x and f.
          const refused = asCalls ? ["x", "f", "kw", "stream"] : ["x", "f"];
          assert.deepEqual(
            Object.keys(extras).filter((key) => refused.includes(key)),
            [],
          );
        },
      ),
      // The example is a results run with a stream field, which CI once drew (seed 245213446): accepted, as it should be.
      { ...fuzzSettings(2000), examples: [[false, [1], [[]], { stream: 4 }, "svc"]] },
    );
    assert.ok(seen.calls > 0 && seen.results > 0 && seen.refused > 0, JSON.stringify(seen));
  });
});

describe("an extension's host and guest", () => {
  const manager = makeManager();
  let ext: Extension;
  before(async () => {
    ext = await manager.load({ name: "batch_echo", modulePath: fixture("echo_ext"), sandbox: { mode: "disabled" } });
  });
  after(() => manager.close());

  it("agree on batches and answer thousands of calls in flight, plain and not, each with its own value", async () => {
    const values = Array.from({ length: 3000 }, (_, i) =>
      i % 7 === 0 ? { nested: [i] } : i % 5 === 0 ? `héllo ${i}` : i % 3 === 0 ? i + 0.5 : i,
    );
    const replies = await Promise.all(values.map((value) => ext.call("echo", [value])));
    assert.deepEqual(replies, values);
  });

  it("keep errors among batched results in their places", async () => {
    const calls = Array.from({ length: 300 }, (_, i) =>
      i % 10 === 0
        ? ext.call("raise_value_error", [`bad ${i}`]).then(
            () => "resolved",
            (error: Error) => error.message,
          )
        : ext.call("sync_add", [i, 1]),
    );
    const replies = await Promise.all(calls);
    replies.forEach((reply, i) => {
      if (i % 10 === 0) assert.match(String(reply), new RegExp(`bad ${i}`));
      else assert.equal(reply, i + 1);
    });
  });
});
