// RPC peer callables: functions passed both ways, proxies, release after garbage collection.

import assert from "node:assert/strict";
import { setImmediate as tick } from "node:timers/promises";
import { describe, test } from "node:test";
import { ExtensionClosedError } from "../src/errors.js";
import { gc, peerPair, services, type Tap } from "./rpc-helpers.js";

/** Collects garbage until the tap has seen a `release` (FinalizationRegistry callbacks run in later tasks). */
async function collectUntilRelease(tap: Tap): Promise<Record<string, unknown>> {
  for (let round = 0; round < 50; round++) {
    gc();
    await tick();
    const release = tap.headers.find((h) => h.k === "release");
    if (release) return release;
  }
  assert.fail("no release was sent after 50 garbage collections");
}

describe("RpcPeer callables", () => {
  test("a function passed as an argument is called back through a proxy", async () => {
    const { a, b } = peerPair(
      {},
      {
        resolveTarget: services({
          list: {
            async map(items: number[], fn: (x: number) => Promise<number>): Promise<number[]> {
              const out: number[] = [];
              for (const item of items) out.push(await fn(item));
              return out;
            },
          },
        }),
      },
    );
    const seen: number[] = [];
    const double = (x: number): number => {
      seen.push(x);
      return x * 2;
    };
    assert.deepEqual(await a.call("list", "map", [[1, 2, 3], double]), [2, 4, 6]);
    assert.deepEqual(seen, [1, 2, 3]);
    assert.equal(b.stats.imported, 1);
    a.close();
  });

  test("a function returned as a result becomes an async proxy that keeps its state on the other side", async () => {
    const { a } = peerPair(
      {},
      {
        resolveTarget: services({
          factory: {
            counter(start: number) {
              let n = start;
              return { next: () => ++n, reset: async () => (n = start) };
            },
          },
        }),
      },
    );
    const counter = (await a.call("factory", "counter", [10])) as {
      next: () => Promise<number>;
      reset: () => Promise<number>;
    };
    assert.equal(typeof counter.next, "function");
    assert.equal(await counter.next(), 11);
    assert.equal(await counter.next(), 12);
    assert.equal(await counter.reset(), 10);
    assert.equal(a.stats.imported, 2);
    a.close();
    await assert.rejects(counter.next(), ExtensionClosedError);
  });

  test("a proxy passed back to its origin side still works (a two-hop callable)", async () => {
    const { a, aToB } = peerPair(
      {},
      {
        resolveTarget: services({
          ext: { triple: () => (x: number) => x * 3, apply: (fn: (x: number) => Promise<number>, x: number) => fn(x) },
        }),
      },
    );
    const triple = await a.call("ext", "triple", []);
    assert.equal(await a.call("ext", "apply", [triple, 5]), 15);
    assert.ok(
      aToB.headers.some((h) => h.k === "result" && h.value === 15),
      "b called a's proxy, which called b",
    );
    a.close();
  });

  test("callables nest: a callback that calls back", async () => {
    const { a } = peerPair(
      {},
      {
        resolveTarget: services({
          svc: {
            run: async (outer: (inner: (x: number) => number) => Promise<number>) => outer((x) => x + 1),
          },
        }),
      },
    );
    const result = await a.call("svc", "run", [
      async (inner: (x: number) => Promise<number>) => (await inner(41)) * 10,
    ]);
    assert.equal(result, 420);
    a.close();
  });

  test("a callable the receiver drops is released after GC, and the sender forgets it", async () => {
    const { a, b, bToA } = peerPair({}, { resolveTarget: services({ svc: { ignore: (_fn: unknown) => "ok" } }) });
    assert.equal(await a.call("svc", "ignore", [() => "never called"]), "ok");
    assert.equal(a.stats.exported, 1);
    const release = await collectUntilRelease(bToA);
    assert.deepEqual(release, { k: "release", fns: [1] });
    assert.equal(await a.call("svc", "ignore", [null]), "ok"); // a has read the release by now
    assert.equal(a.stats.exported, 0);
    assert.equal(b.stats.imported, 0);
    a.close();
  });

  test("a returned callable the caller drops is released after GC, the other way round", async () => {
    const { a, b, aToB } = peerPair({}, { resolveTarget: services({ svc: { make: () => () => 1 } }) });
    await a.call("svc", "make", []);
    assert.equal(b.stats.exported, 1);
    const release = await collectUntilRelease(aToB);
    assert.deepEqual(release.fns, [1]);
    assert.equal(
      await a.call("svc", "make", []).then(() => b.stats.exported),
      1,
      "the old one is gone, a new one exported",
    );
    a.close();
  });

  test("calling a released callable is a LookupError", async () => {
    const { a, b, bToA } = peerPair({}, { resolveTarget: services({ svc: { ignore: () => "ok" } }) });
    await a.call("svc", "ignore", [() => 1]);
    await collectUntilRelease(bToA);
    await a.call("svc", "ignore", []);
    await assert.rejects(b.callFn(1, []), /LookupError: no callable with id 1/);
    a.close();
  });

  test("export tables are cleared on close", async () => {
    const keep: unknown[] = [];
    const { a, b } = peerPair({}, { resolveTarget: services({ svc: { keep: (fn: unknown) => void keep.push(fn) } }) });
    await a.call("svc", "keep", [() => 1]);
    assert.equal(a.stats.exported, 1);
    assert.equal(b.stats.imported, 1);
    a.close();
    b.close();
    assert.equal(a.stats.exported, 0);
    assert.equal(b.stats.imported, 0);
  });
});
