// Keyword arguments between two in-memory peers: the kwargs() marker and options.kwargs, the `kw` field, the trailing object.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { kwargs } from "../src/index.js";
import { RemoteError } from "../src/errors.js";
import { encodeFrame } from "../src/rpc/framing.js";
import { peerPair, services } from "./rpc-helpers.js";

/** Records what each call received, arguments as a list. */
function recorder() {
  const calls: unknown[][] = [];
  const service = {
    seen(...args: unknown[]): unknown[] {
      calls.push(args);
      return args;
    },
    async call(fn: (...args: unknown[]) => Promise<unknown>, ...args: unknown[]): Promise<unknown> {
      return fn(...args);
    },
  };
  return { calls, service };
}

describe("keyword arguments", () => {
  const setup = () => {
    const { calls, service } = recorder();
    return { calls, ...peerPair({}, { resolveTarget: services({ svc: service }) }) };
  };

  test("a kwargs() marker last is sent as kw and reaches a JS method as one trailing object", async () => {
    const { a, aToB, calls } = setup();
    const data = Uint8Array.of(1, 2);
    const back = await a.call("svc", "seen", [1, kwargs({ axis: 0, data, deep: { list: [2n ** 64n, null] } })]);
    assert.deepEqual(back, [1, { axis: 0, data, deep: { list: [2n ** 64n, null] } }]);
    assert.equal(calls[0]!.length, 2);
    const header = await aToB.waitFor((h) => h.k === "call");
    assert.deepEqual(Object.keys(header), ["k", "id", "target", "method", "args", "kw", "x", "a"], "kw follows args");
    assert.deepEqual(header.kw, {
      axis: 0,
      data: { $bytes: 0 },
      deep: { list: [{ $int: "18446744073709551616" }, null] },
    });
  });

  test("options.kwargs is the same; both at once is refused", async () => {
    const { a, calls } = setup();
    assert.deepEqual(await a.call("svc", "seen", ["x"], { kwargs: { sid: null } }), ["x", { sid: null }]);
    await assert.rejects(a.call("svc", "seen", [kwargs({ a: 1 })], { kwargs: { b: 2 } }), /given twice/);
    assert.equal(calls.length, 1);
  });

  test("no kwargs, or an empty set, means no kw field and no extra argument", async () => {
    const { a, aToB, calls } = setup();
    await a.call("svc", "seen", [1]);
    await a.call("svc", "seen", [1, kwargs({})]);
    await a.call("svc", "seen", [1], { kwargs: {} });
    assert.deepEqual(calls, [[1], [1], [1]]);
    assert.ok(aToB.headers.filter((h) => h.k === "call").every((h) => !("kw" in h)));
  });

  test("an empty kw on the wire is no keywords", async () => {
    const { b, streams, bToA, calls } = setup();
    streams.a.write(Buffer.concat(encodeFrame({ k: "call", id: 7, target: "svc", method: "seen", args: [3], kw: {} })));
    await bToA.waitFor((h) => h.k === "result" && h.id === 7);
    assert.deepEqual(calls, [[3]]);
    assert.equal(b.state, "open");
  });

  test("names must be Python identifiers, checked before anything is sent", async () => {
    const { a, aToB } = setup();
    for (const bad of ["a-b", "", "1x", "$x", "with space"]) {
      assert.throws(() => kwargs({ [bad]: 1 }), /is not a Python identifier/, bad);
      await assert.rejects(a.call("svc", "seen", [], { kwargs: { [bad]: 1 } }), /is not a Python identifier/, bad);
    }
    assert.throws(() => kwargs(new Map() as never), /plain object/);
    assert.throws(() => kwargs([1] as never), /plain object/);
    await assert.rejects(a.call("svc", "seen", [], { kwargs: "axis" as never }), /options.kwargs takes a plain object/);
    assert.deepEqual(kwargs({ été: 1, _x: 2, __proto__x: 3 }).values, { été: 1, _x: 2, __proto__x: 3 });
    assert.equal(aToB.headers.length, 0);
  });

  test("a keyword named __proto__ stays an own property both ways (no prototype is set)", async () => {
    const { a, calls } = setup();
    const back = (await a.call("svc", "seen", [kwargs({ ["__proto__"]: { polluted: true } })])) as Record<
      string,
      unknown
    >[];
    const received = calls[0]![0] as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(received), Object.prototype);
    assert.deepEqual(Object.getOwnPropertyDescriptor(received, "__proto__")?.value, { polluted: true });
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(Object.getPrototypeOf(back[0]), Object.prototype);
  });

  test("a marker that is not the last argument is refused like any unsendable value", async () => {
    const { a } = setup();
    await assert.rejects(a.call("svc", "seen", [kwargs({ a: 1 }), 2]), /cannot send kwargs\(\.\.\.\) .* at args\[0\]/);
  });

  test("an unsendable keyword value is named by its path; the callables it exported are forgotten", async () => {
    const { a } = setup();
    await assert.rejects(
      a.call("svc", "seen", [() => 1], { kwargs: { fn: () => 2, when: new Date(0) } }),
      /cannot send a Date at kwargs\.when/,
    );
    assert.equal(a.stats.exported, 0);
  });

  test("a remote callable called with a kwargs() marker sends kw; the JS function gets the trailing object", async () => {
    const pair = peerPair({
      resolveTarget: services({ cb: { run: (f: (...a: unknown[]) => unknown) => f(2, kwargs({ sid: 9 })) } }),
    });
    const received: unknown[][] = [];
    assert.equal(await pair.b.call("cb", "run", [(...args: unknown[]) => (received.push(args), "done")]), "done");
    assert.deepEqual(received, [[2, { sid: 9 }]]);
    const callback = await pair.aToB.waitFor((h) => h.k === "call" && h.fn !== undefined);
    assert.deepEqual([callback.args, callback.kw], [[2], { sid: 9 }]);
  });

  test("a wrong keyword surfaces as the callee's error", async () => {
    const pair = peerPair(
      {},
      {
        resolveTarget: services({
          svc: {
            strict(x: number, options?: { axis?: number }) {
              for (const name of Object.keys(options ?? {}))
                if (name !== "axis") throw new TypeError(`unexpected keyword argument '${name}'`);
              return x + (options?.axis ?? 0);
            },
          },
        }),
      },
    );
    assert.equal(await pair.a.call("svc", "strict", [1, kwargs({ axis: 2 })]), 3);
    const error = await pair.a.call("svc", "strict", [1, kwargs({ nope: 1 })]).catch((e: unknown) => e);
    assert.ok(error instanceof RemoteError);
    assert.equal(error.remoteType, "TypeError");
  });
});
