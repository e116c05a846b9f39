// Streams with a real extension process: generators read by for-await, credit that bounds the producer, cancellation
// that closes the Python generator, errors and crashes mid-stream, many streams at once, host iterables into Python.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  CallAbortedError,
  ExtensionClosedError,
  ExtensionCrashedError,
  RemoteError,
  UnknownMethodError,
  type Extension,
} from "../src/index.js";
import { fixture, makeManager, waitFor } from "./helpers.js";

interface Stats {
  produced: number;
  closed: string | null;
}

const manager = makeManager();
let ext: Extension;

before(async () => {
  ext = await manager.load({ name: "stream_main", modulePath: fixture("stream_ext"), sandbox: { mode: "disabled" } });
});
after(() => manager.close());

async function collect(iterable: AsyncIterable<unknown>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

const stats = async (tag: string): Promise<Stats> => (await ext.call("stats", [tag])) as Stats;

describe("reading a Python generator", () => {
  it("a sync and an async generator's items arrive in order, through stream() and the proxy, with keyword arguments", async () => {
    assert.deepEqual(await collect(ext.stream("count", [5, 10])), [10, 11, 12, 13, 14]);
    assert.deepEqual(await collect(ext.stream("words", ["a b c"], { kwargs: { upper: true } })), ["A", "B", "C"]);
    assert.deepEqual(ext.streamMethods.includes("count") && ext.streamMethods.includes("words"), true);
    assert.equal(ext.streamMethods.includes("stats"), false, "a plain method is not a stream");
    const viaProxy = ext.proxy.count!(3) as unknown as AsyncIterable<unknown>;
    assert.equal(typeof viaProxy[Symbol.asyncIterator], "function", "the proxy streams a generator method");
    assert.deepEqual(await collect(viaProxy), [0, 1, 2]);
    assert.equal(typeof (await ext.proxy.pid!()), "number", "a plain method through the proxy is still a call");
  });

  it("a generator of zero items ends at once, and a window of 1 still delivers every item", async () => {
    assert.deepEqual(await collect(ext.stream("count", [0])), []);
    assert.deepEqual(
      await collect(ext.stream("count", [40], { window: 1 })),
      Array.from({ length: 40 }, (_, i) => i),
    );
  });

  it("backpressure: a consumer that stops reading holds the generator to its window, and reading on lets it go on", async () => {
    const window = 4;
    const stream = ext.stream("forever", ["bp"], { window });
    const seen: number[] = [];
    seen.push(((await stream.next()).value as { i: number }).i);
    // The generator runs until the credit is spent, then waits: exactly `window` items produced.
    await waitFor(async () => (await stats("bp")).produced === window, 10_000, "the producer to fill its window");
    for (let round = 0; round < 5; round++) await ext.call("pid");
    assert.equal((await stats("bp")).produced, window, "no item past the credit, however long the consumer waits");
    for (let k = 0; k < 60; k++) {
      seen.push(((await stream.next()).value as { i: number }).i);
      const { produced } = await stats("bp");
      assert.ok(
        produced - seen.length <= window,
        `produced ${produced} with ${seen.length} read: at most ${window} ahead`,
      );
    }
    assert.deepEqual(
      seen,
      Array.from({ length: 61 }, (_, i) => i),
    );
    await stream.return!();
    await waitFor(async () => (await stats("bp")).closed === "GeneratorExit", 10_000, "the generator to close");
  });

  it("breaking out of for-await closes a sync generator: it sees GeneratorExit", async () => {
    let n = 0;
    for await (const _item of ext.stream("forever", ["brk"])) if (++n === 3) break;
    await waitFor(async () => (await stats("brk")).closed === "GeneratorExit", 10_000, "GeneratorExit");
  });

  it("an AbortSignal rejects the waiting read with CallAbortedError; the async generator sees CancelledError", async () => {
    const controller = new AbortController();
    const stream = ext.stream("forever_async", ["abort", 1], { signal: controller.signal });
    assert.equal((await stream.next()).value, 0);
    const read = stream.next();
    controller.abort(new Error("user gave up"));
    const error = await read.catch((e: unknown) => e);
    assert.ok(error instanceof CallAbortedError, String(error));
    assert.equal((error.cause as Error).message, "user gave up");
    await assert.rejects(stream.next(), CallAbortedError, "later reads reject the same way");
    await waitFor(
      async () => (await stats("abort")).closed === "CancelledError",
      10_000,
      "CancelledError in the generator",
    );
  });

  it("the per-item idle timeout cancels a stream whose next item does not come", async () => {
    const stream = ext.stream("forever_async", ["idle", 2], { idleTimeoutMs: 300 });
    assert.deepEqual([(await stream.next()).value, (await stream.next()).value], [0, 1]);
    const error = await stream.next().catch((e: unknown) => e);
    assert.ok(error instanceof CallAbortedError && error.timedOut, String(error));
    assert.match(error.message, /no item within 300 ms/);
    await waitFor(
      async () => (await stats("idle")).closed === "CancelledError",
      10_000,
      "CancelledError after the timeout",
    );
  });

  it("an error mid-stream comes after the items before it, as a RemoteError with the Python type and traceback", async () => {
    const stream = ext.stream("fail_after", [2]);
    assert.deepEqual([(await stream.next()).value, (await stream.next()).value], [0, 1]);
    const error = await stream.next().catch((e: unknown) => e);
    assert.ok(error instanceof RemoteError, String(error));
    assert.equal(error.remoteType, "ValueError");
    assert.match(error.message, /failed after 2 items/);
    assert.match(error.remoteTraceback ?? "", /in fail_after/);
    assert.deepEqual(await stream.next(), { done: true, value: undefined }, "the stream is over after its error");
  });

  it("a method that returns no generator, an item that cannot be sent, and an unknown method end in typed errors", async () => {
    const notGen = await collect(ext.stream("not_a_generator")).catch((e: unknown) => e);
    assert.ok(notGen instanceof RemoteError && notGen.remoteType === "TypeError", String(notGen));
    assert.match(notGen.message, /must return a generator or async generator, not list/);
    const stream = ext.stream("unsendable");
    assert.equal((await stream.next()).value, 1);
    const unsendable = await stream.next().catch((e: unknown) => e);
    assert.ok(unsendable instanceof RemoteError && unsendable.remoteType === "TypeError", String(unsendable));
    await assert.rejects(collect(ext.stream("nope")), UnknownMethodError);
    await assert.rejects(
      collect(ext.stream("count", [1], { window: 0 })),
      /options.window must be an integer from 1 to 65536/,
    );
    assert.equal(((await ext.call("pid")) as number) > 0, true, "the extension is unharmed");
  });

  it("many streams at once on one extension, interleaved with calls, each gets its own items", async () => {
    const streams = Array.from({ length: 200 }, (_, s) => collect(ext.stream("count", [25, s * 1000], { window: 3 })));
    const calls = Array.from({ length: 100 }, () => ext.call("pid"));
    const results = await Promise.all(streams);
    results.forEach((items, s) =>
      assert.deepEqual(
        items,
        Array.from({ length: 25 }, (_, i) => s * 1000 + i),
      ),
    );
    assert.equal(new Set(await Promise.all(calls)).size, 1);
  });
});

describe("host iterables into Python", () => {
  it("an async generator passed as an argument arrives as an async iterator; a sync generator too", async () => {
    async function* numbers(): AsyncGenerator<number> {
      for (let i = 0; i < 50; i++) yield i;
    }
    assert.deepEqual(
      await ext.call("collect", [numbers()]),
      Array.from({ length: 50 }, (_, i) => i),
    );
    function* letters(): Generator<string> {
      yield* ["x", "y"];
    }
    assert.deepEqual(await ext.call("collect", [letters()]), ["x", "y"]);
  });

  it("backpressure host to Python: the host generator runs at most the window (16) ahead of Python's reads", async () => {
    let produced = 0;
    let maxAhead = 0;
    let read = 0;
    async function* source(): AsyncGenerator<number> {
      for (let i = 1; i <= 100; i++) {
        produced += 1;
        maxAhead = Math.max(maxAhead, produced - read);
        yield i;
      }
    }
    const probe = (item: number): void => {
      read += 1;
      assert.equal(item, read);
    };
    assert.equal(await ext.call("sum_slowly", [source(), probe]), 5050);
    assert.ok(maxAhead <= 16 + 1, `the host generator ran ${maxAhead} items ahead of Python's reads`);
    assert.ok(maxAhead >= 2, "it did run ahead (the window is used)");
  });

  it("Python closing a host stream early runs the host generator's finally; streams flow both ways at once", async () => {
    let finalized = false;
    async function* endless(): AsyncGenerator<number> {
      try {
        for (let i = 0; ; i++) yield i;
      } finally {
        finalized = true;
      }
    }
    assert.deepEqual(await ext.call("collect", [endless(), 3]), [0, 1, 2]);
    await waitFor(() => finalized, 10_000, "the host generator's finally");
    async function* ones(): AsyncGenerator<number> {
      for (let i = 0; i < 30; i++) yield i;
    }
    assert.deepEqual(
      await collect(ext.stream("doubled", [ones()], { window: 2 })),
      Array.from({ length: 30 }, (_, i) => i * 2),
    );
  });

  it("an error thrown by the host generator reaches Python as the exception of its read", async () => {
    async function* broken(): AsyncGenerator<number> {
      yield 1;
      throw new RangeError("host source broke");
    }
    const error = await ext.call("collect", [broken()]).catch((e: unknown) => e);
    // Python raises RemoteError (no builtin RangeError) out of its `async for`, and that comes back as the call's error.
    assert.ok(error instanceof RemoteError, String(error));
    assert.equal(error.remoteType, "RemoteError");
    assert.match(error.message, /RangeError: host source broke/);
  });
});

describe("a stream's extension goes away", () => {
  it("a crash mid-stream ends it with ExtensionCrashedError after the items that arrived", async () => {
    const crashing = await manager.load({
      name: "stream_crash",
      modulePath: fixture("stream_ext"),
      sandbox: { mode: "disabled" },
    });
    const items: unknown[] = [];
    const error = await (async () => {
      for await (const item of crashing.stream("crash_after", [3])) items.push(item);
    })().catch((e: unknown) => e);
    assert.ok(error instanceof ExtensionCrashedError, String(error));
    assert.equal(error.exitCode, 17);
    assert.deepEqual(items, [0, 1, 2]);
  });

  it("a stream made while the extension restarts (queueCalls) waits for the restart, then streams", async () => {
    const restarting = await manager.load({
      name: "stream_restart",
      modulePath: fixture("stream_ext"),
      sandbox: { mode: "disabled" },
      restart: { queueCalls: true, backoffMs: 50, maxRestarts: 2 },
    });
    const crash = await collect(restarting.stream("crash_after", [0])).catch((e: unknown) => e);
    assert.ok(crash instanceof ExtensionCrashedError, String(crash));
    assert.equal(restarting.state, "restarting");
    assert.deepEqual(await collect(restarting.stream("count", [3])), [0, 1, 2]);
    assert.equal(restarting.restarts, 1);
    await restarting.stop();
  });

  it("stop() ends an open stream with ExtensionClosedError, and a stream of a stopped extension rejects at once", async () => {
    const stopping = await manager.load({
      name: "stream_stop",
      modulePath: fixture("stream_ext"),
      sandbox: { mode: "disabled" },
    });
    const stream = stopping.stream("forever_async", ["stop", 1]);
    assert.equal((await stream.next()).value, 0);
    const read = stream.next().catch((e: unknown) => e);
    await stopping.stop();
    assert.ok((await read) instanceof ExtensionClosedError);
    await assert.rejects(stopping.stream("count", [1]).next(), ExtensionClosedError);
  });
});
