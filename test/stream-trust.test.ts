// Hostile stream messages from a real extension that writes around its peer's checks: items past the credit, items
// for no open stream, credit past the most a stream may hold, a stream value from the guest, and a flood of stream
// calls the host never offered. Each rule's control (just inside it) is accepted; past it the extension is stopped
// with a ProtocolError and the host, and another extension, carry on. The checks are the host's own and the same under
// every sandbox backend, so one mode (none) runs them.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ProtocolError, type Extension } from "../src/index.js";
import { Handshake } from "../src/lifecycle/handshake.js";
import { fixture, makeManager } from "./helpers.js";

const manager = makeManager();
let bystander: Extension;
let loads = 0;

before(async () => {
  bystander = await manager.load({
    name: "stream_bystander",
    modulePath: fixture("stream_ext"),
    sandbox: { mode: "disabled" },
  });
});
after(() => manager.close());

async function hostile(): Promise<Extension> {
  loads += 1;
  return manager.load({
    name: `stream_hostile_${loads}`,
    modulePath: fixture("stream_hostile"),
    sandbox: { mode: "disabled" },
  });
}

async function collect(iterable: AsyncIterable<unknown>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

/** Reads one item, waits (at most 5 s) for `ext` to be stopped, then reads the rest: ends with the stream's error. */
async function readOneThenAll(ext: Extension, iterable: AsyncIterable<unknown>): Promise<unknown[]> {
  const iterator = iterable[Symbol.asyncIterator]();
  const out: unknown[] = [];
  const first = await iterator.next();
  if (!first.done) out.push(first.value);
  for (let i = 0; i < 100 && ext.state !== "crashed"; i++) await new Promise((resolve) => setTimeout(resolve, 50));
  for (let next = await iterator.next(); !next.done; next = await iterator.next()) out.push(next.value);
  return out;
}

/** The attack stopped `ext` with a ProtocolError matching `says`; the bystander still answers. */
async function refused(ext: Extension, attempt: Promise<unknown>, says: RegExp): Promise<void> {
  const error = await attempt.then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(error instanceof ProtocolError, `expected a ProtocolError, got ${String(error)}`);
  assert.match(error.message, says);
  assert.equal(ext.state, "crashed");
  assert.deepEqual(await collect(bystander.stream("count", [3])), [0, 1, 2], "another extension streams on");
}

async function* endless(): AsyncGenerator<number> {
  for (let i = 0; ; i++) yield i;
}

describe("hostile stream messages", () => {
  it("items past the credit granted: the whole window is accepted, one more stops the extension", async () => {
    const ext = await hostile();
    assert.deepEqual(
      await collect(ext.stream("items", [0], { window: 16 })),
      Array.from({ length: 16 }, (_, i) => i),
    );
    // Read one item only (under half the window, so no new credit goes out) until the host has judged the burst:
    // a reader that drained the queue would grant 8 more before the 17th item arrived, and it would be in credit.
    await refused(
      ext,
      readOneThenAll(ext, ext.stream("items", [1], { window: 16 })),
      /item \d+: more items than the 16 granted to stream extension\.items/,
    );
  });

  it("an item for a stream call that is not open", async () => {
    const ext = await hostile();
    assert.deepEqual(await collect(ext.stream("item_for", [0])), ["stray"]);
    await refused(ext, collect(ext.stream("item_for", [1000])), /item \d+: no stream call with this id is open/);
  });

  it("credit past the most one stream may hold (65,536 items) for a host iterable", async () => {
    const ext = await hostile();
    assert.equal(await ext.call("credit", [endless(), 8, 2]), 0);
    await refused(
      ext,
      ext.call("credit", [endless(), 65_536, 2]),
      /credit \d+: \d+ items outstanding exceeds the most a stream may hold, 65536/,
    );
  });

  it("a $iter value from the extension: streams go from the host only", async () => {
    const ext = await hostile();
    await refused(ext, ext.call("send_iter", [1]), /a \$iter value \(a stream\) may only be sent by the host/);
  });

  it("20,000 stream calls on callables and services never offered as streams are each refused; nothing is kept", async () => {
    const ext = await hostile();
    const heapBefore = process.memoryUsage().heapUsed;
    assert.equal(await ext.call("stream_calls", [20_000]), 20_000);
    assert.equal(await ext.call("ping"), "pong", "the refusals were answers, not a stop");
    assert.equal(ext.state, "ready");
    const grown = process.memoryUsage().heapUsed - heapBefore;
    assert.ok(grown < 64 * 1024 * 1024, `the host heap grew ${grown} bytes`);
  });
});

describe("the ready message's list of generator methods", () => {
  const ready = (fields: Record<string, unknown>): unknown => {
    const handshake = new Handshake("gen");
    handshake.accept({ k: "hello", v: 1, python: "3.11.7", pid: 42 });
    return handshake.accept({ k: "ready", methods: ["count", "pid"], extensionClass: "Ext", ...fields });
  };

  it("names methods among `methods`; absent, none streams", () => {
    assert.deepEqual(ready({ streams: ["count"] }), {
      kind: "ready",
      methods: ["count", "pid"],
      extensionClass: "Ext",
      streams: ["count"],
    });
    assert.deepEqual(ready({}), { kind: "ready", methods: ["count", "pid"], extensionClass: "Ext", streams: [] });
  });

  it("a name outside `methods`, a non-list or more names than methods is a ProtocolError", () => {
    for (const streams of [["nope"], "count", [1], ["count", "count", "count"]]) {
      const step = ready({ streams }) as { kind: string; error?: Error };
      assert.equal(step.kind, "fail", JSON.stringify(streams));
      assert.ok(step.error instanceof ProtocolError);
      assert.match(step.error.message, /ready: "streams" must be a list of names from "methods"/);
    }
  });
});
