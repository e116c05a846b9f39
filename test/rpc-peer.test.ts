// RPC peer: two peers talking in memory (and over a real Unix socket): calls, nesting, concurrency, values.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { RemoteError } from "../src/errors.js";
import { RpcPeer } from "../src/rpc/peer.js";
import { deferred, peerPair, services, unixSocketPair } from "./rpc-helpers.js";

describe("RpcPeer calls", () => {
  test("calls go both ways, to sync and async methods", async () => {
    const { a, b } = peerPair(
      { resolveTarget: services({ math: { add: (x: number, y: number) => x + y } }) },
      { resolveTarget: services({ greet: { hello: async (name: string) => `hello ${name}` } }) },
    );
    assert.equal(await a.call("greet", "hello", ["ext"]), "hello ext");
    assert.equal(await b.call("math", "add", [2, 3]), 5);
    assert.equal(a.state, "open");
    a.close();
  });

  test("values survive the trip: bytes, bigints, non-finite floats, maps, undefined", async () => {
    const { a } = peerPair({}, { resolveTarget: services({ echo: { echo: (...args: unknown[]) => args } }) });
    const bytes = new Uint8Array(50_000).fill(3);
    const result = (await a.call("echo", "echo", [
      Buffer.from("hi"),
      bytes,
      2n ** 80n,
      NaN,
      -Infinity,
      new Map([[1, "one"]]),
      { $weird: true },
      undefined,
      { nested: [[{ deep: [1, 2, { x: null }] }]] },
    ])) as unknown[];
    assert.deepEqual(result.slice(2), [
      2n ** 80n,
      NaN,
      -Infinity,
      { 1: "one" },
      { $weird: true },
      null,
      { nested: [[{ deep: [1, 2, { x: null }] }]] },
    ]);
    assert.deepEqual([...(result[0] as Uint8Array)], [104, 105]);
    assert.equal((result[1] as Uint8Array).length, 50_000);
    assert.equal((result[1] as Uint8Array)[49_999], 3);
    a.close();
  });

  test("undefined results arrive as null", async () => {
    const { a } = peerPair({}, { resolveTarget: services({ svc: { nothing() {} } }) });
    assert.equal(await a.call("svc", "nothing", []), null);
    a.close();
  });

  test("calls nest 20 deep, alternating sides", async () => {
    const bounce = (self: () => RpcPeer) => ({
      async down(n: number, path: string[]): Promise<string[]> {
        const here = [...path, self() === a ? "a" : "b"];
        return n === 0 ? here : ((await self().call("bounce", "down", [n - 1, here])) as string[]);
      },
    });
    const { a, b } = peerPair(
      { resolveTarget: services({ bounce: bounce(() => a) }) },
      { resolveTarget: services({ bounce: bounce(() => b) }) },
    );
    const path = (await a.call("bounce", "down", [20, []])) as string[];
    assert.equal(path.length, 21);
    assert.deepEqual(path.slice(0, 4), ["b", "a", "b", "a"]);
    assert.deepEqual(a.stats, { pending: 0, incoming: 0, exported: 0, imported: 0 });
    a.close();
  });

  test("300 concurrent calls, answered in reverse order, each get their own result", async () => {
    const waiting: { n: number; done: (v: number) => void }[] = [];
    const allArrived = deferred();
    const { a, b } = peerPair(
      {},
      {
        resolveTarget: services({
          svc: {
            square(n: number): Promise<number> {
              const { promise, resolve } = deferred<number>();
              waiting.push({ n, done: resolve });
              if (waiting.length === 300) allArrived.resolve(undefined);
              return promise;
            },
          },
        }),
      },
    );
    const calls = Array.from({ length: 300 }, (_, n) => a.call("svc", "square", [n]));
    await allArrived.promise;
    assert.equal(b.stats.incoming, 300);
    for (const w of waiting.reverse()) w.done(w.n * w.n);
    assert.deepEqual(
      await Promise.all(calls),
      Array.from({ length: 300 }, (_, n) => n * n),
    );
    assert.equal(a.stats.pending, 0);
    assert.equal(b.stats.incoming, 0);
    a.close();
  });

  test("methods: own, prototype and inherited ones are callable, with this bound to the service", async () => {
    class Base {
      protected count = 0;
      bump(): number {
        return ++this.count;
      }
    }
    class Counter extends Base {
      twice(): number {
        this.bump();
        return this.bump();
      }
    }
    const counter = new Counter();
    const { a } = peerPair({}, { resolveTarget: services({ counter }) });
    assert.equal(await a.call("counter", "bump", []), 1);
    assert.equal(await a.call("counter", "twice", []), 3);
    a.close();
  });
});

describe("RpcPeer control messages and events", () => {
  test("control messages reach onControl; send() refuses RPC kinds", async () => {
    const seen: unknown[] = [];
    const got = deferred();
    const { a, b } = peerPair({
      onControl: (m) => {
        seen.push(m);
        if (m.k === "ready") got.resolve(undefined);
      },
    });
    b.send({ k: "hello", v: 1, runtime: "0.1.0", python: "3.11.7", pid: 42 });
    b.send({ k: "ready", methods: ["mean"], extensionClass: "stats:Stats" });
    await got.promise;
    assert.deepEqual(seen, [
      { k: "hello", v: 1, runtime: "0.1.0", python: "3.11.7", pid: 42 },
      { k: "ready", methods: ["mean"], extensionClass: "stats:Stats" },
    ]);
    assert.throws(() => b.send({ k: "call" } as never), /send\(\) is for control messages/);
    a.close();
    assert.throws(() => a.send({ k: "shutdown" }), /closed/);
  });

  test("events carry decoded payloads", async () => {
    const got = deferred<unknown>();
    const { a, b } = peerPair({ onControl: (m) => m.k === "event" && got.resolve(m) });
    b.emit("progress", { done: 2n ** 60n, rate: NaN, blob: Uint8Array.of(7) });
    const event = (await got.promise) as { name: string; payload: { done: bigint; rate: number; blob: Uint8Array } };
    assert.equal(event.name, "progress");
    assert.equal(event.payload.done, 2n ** 60n);
    assert.ok(Number.isNaN(event.payload.rate));
    assert.deepEqual([...event.payload.blob], [7]);
    a.close();
  });
});

describe("RpcPeer over a Unix socket", () => {
  test("big attachments and many concurrent calls cross a real socket", async () => {
    const { a: sa, b: sb, cleanup } = await unixSocketPair();
    const b = new RpcPeer(sb, {
      resolveTarget: services({
        blob: { reverse: (bytes: Uint8Array) => Buffer.from(bytes).reverse(), id: (x: unknown) => x },
      }),
    });
    const a = new RpcPeer(sa, {});
    const big = new Uint8Array(5 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = i & 0xff;
    const [reversed, ...echoes] = await Promise.all([
      a.call("blob", "reverse", [big]),
      ...Array.from({ length: 300 }, (_, i) => a.call("blob", "id", [{ i, s: "x".repeat(i) }])),
    ]);
    assert.equal((reversed as Uint8Array).length, big.length);
    assert.equal((reversed as Uint8Array)[0], (big.length - 1) & 0xff);
    assert.deepEqual(
      echoes.map((e) => (e as { i: number }).i),
      Array.from({ length: 300 }, (_, i) => i),
    );
    const closed = b.call("blob", "id", [1]).catch((e: unknown) => e);
    a.close();
    assert.ok((await closed) instanceof Error);
    b.close();
    cleanup();
  });

  test("an error keeps its remote type and traceback", async () => {
    const { a: sa, b: sb, cleanup } = await unixSocketPair();
    const b = new RpcPeer(sb, {
      resolveTarget: services({
        svc: {
          fail() {
            throw new RangeError("too far");
          },
        },
      }),
    });
    const a = new RpcPeer(sa);
    const err = await a.call("svc", "fail", []).catch((e: unknown) => e);
    assert.ok(err instanceof RemoteError);
    assert.equal(err.remoteType, "RangeError");
    assert.match(err.remoteTraceback, /^RangeError: too far\n\s+at .*fail/);
    a.close();
    b.close();
    cleanup();
  });
});
