// ext.proxy and remote callables with a real extension: JavaScript's probes stay local, unknown names are refused
// on the host, and typed proxies call through to Python.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { inspect } from "node:util";
import { UnknownMethodError, type Extension, type ExtensionManager } from "../src/index.js";
import { fixture, makeManager } from "./helpers.js";

/** Any unhandled rejection while a test runs fails it: a probe turned into a failed remote call would show here. */
function trapUnhandled(): { escaped: unknown[]; release: () => void } {
  const escaped: unknown[] = [];
  const onEscape = (reason: unknown): void => void escaped.push(reason);
  process.on("unhandledRejection", onEscape);
  return { escaped, release: () => process.off("unhandledRejection", onEscape) };
}

/** Lets pending promise jobs and a macrotask run, so that an unhandled rejection would have been reported. */
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20));

describe("ext.proxy", () => {
  let manager: ExtensionManager;
  let ext: Extension;

  before(async () => {
    manager = makeManager();
    ext = await manager.load({ name: "native_types_proxy", modulePath: fixture("native_types_ext") });
  });
  after(() => manager.close());

  it("never turns then, toJSON, toString, valueOf, constructor, inspect or a symbol into a remote call", async () => {
    const trap = trapUnhandled();
    try {
      const proxy = ext.proxy;
      assert.equal(JSON.stringify({ api: proxy }), '{"api":{}}');
      assert.equal(String(proxy), '[Remote extension "native_types_proxy"]');
      assert.equal(`${proxy}`, '[Remote extension "native_types_proxy"]');
      assert.equal(proxy + "", '[Remote extension "native_types_proxy"]');
      assert.match(inspect(proxy), /^\[Remote extension "native_types_proxy"\] \{ .*summarize.* \}$/);
      console.log(proxy); // what a developer would do first; must neither throw nor call
      assert.equal(await proxy, proxy, "await gives the proxy itself: it is not a thenable");
      assert.equal(await Promise.resolve(proxy), proxy);
      const loose = proxy as Record<string | symbol, unknown>;
      for (const key of ["then", "catch", "finally", "toJSON", "asymmetricMatch"])
        assert.equal(loose[key], undefined, key);
      // What every object inherits stays Object's own, not a remote method.
      assert.equal(loose.constructor, Object);
      assert.equal(loose.hasOwnProperty, Object.prototype.hasOwnProperty);
      assert.equal(loose.valueOf, Object.prototype.valueOf);
      assert.equal((proxy as object).valueOf(), proxy);
      for (const symbol of [Symbol.iterator, Symbol.asyncIterator, Symbol.hasInstance, Symbol("anything")]) {
        assert.equal(loose[symbol], undefined, String(symbol));
      }
      assert.equal(Object.prototype.toString.call(proxy), "[object Remote]");
      assert.throws(() => [...(proxy as unknown as Iterable<unknown>)], TypeError);
      assert.equal("summarize" in proxy, true);
      assert.equal("no_such_method" in proxy, false);
      await settle();
      assert.deepEqual(trap.escaped, []);
      // The extension's methods of those names were never called; ext.call still reaches them on purpose.
      assert.deepEqual(await ext.call("hits"), []);
      assert.equal(await ext.call("then"), "then");
      assert.equal(await ext.call("toJSON"), "toJSON");
      assert.deepEqual(await ext.call("hits"), ["then", "toJSON"]);
    } finally {
      trap.release();
    }
  });

  it("rejects an unknown method with an error naming the extension, the method and what it offers, sending nothing", async () => {
    const trap = trapUnhandled();
    try {
      const error = await ext.proxy.summarise!([1]).catch((e: unknown) => e);
      assert.ok(error instanceof UnknownMethodError);
      assert.equal(error.code, "ERR_PYISOLATE_UNKNOWN_METHOD");
      assert.equal(error.extension, "native_types_proxy");
      assert.equal(error.method, "summarise");
      assert.ok(error.available.includes("summarize"));
      assert.match(error.message, /^extension "native_types_proxy" has no method "summarise"; it offers: .*summarize/);
      assert.equal(((await ext.call("_hits").catch((e: unknown) => e)) as UnknownMethodError).method, "_hits");
      await settle();
      assert.deepEqual(trap.escaped, []);
    } finally {
      trap.release();
    }
  });

  it("calls through with the result Python returns: a dataclass arrives as the object of its fields, in events too", async () => {
    assert.deepEqual(await ext.proxy.summarize!([1, 2, 3], "abc"), {
      mean: 2,
      count: 3,
      label: "abc",
      tags: ["summary"],
    });
    assert.deepEqual(await ext.proxy.pair!(7, Uint8Array.of(1, 2)), [7, 2]);
    const progress = new Promise((resolve) => ext.once("progress", resolve));
    assert.deepEqual(await ext.proxy.submit!({ id: 4, name: "job" }), [4, "job"]);
    assert.deepEqual(await progress, { done: 1, total: 2 }, "an event's dataclass payload arrives as its fields");
  });

  it("refuses to replace a method on the proxy", () => {
    assert.throws(() => {
      (ext.proxy as Record<string, unknown>).summarize = () => 1;
    }, TypeError);
  });
});

describe("remote callables", () => {
  let manager: ExtensionManager;
  let ext: Extension;

  before(async () => {
    manager = makeManager();
    ext = await manager.load({ name: "native_types_callables", modulePath: fixture("echo_ext") });
  });
  after(() => manager.close());

  it("keep probes local too: await, JSON.stringify, String and inspect neither call nor reject", async () => {
    const trap = trapUnhandled();
    try {
      const fn = (await ext.call("make_adder", [5])) as ((n: number) => Promise<number>) & Record<string, unknown>;
      assert.equal(typeof fn, "function");
      assert.equal(await fn, fn);
      assert.equal(fn.then, undefined);
      assert.equal(JSON.stringify({ fn }), "{}");
      assert.match(String(fn), /^\[remote callable \d+\]$/);
      assert.match(inspect(fn), /^\[remote callable \d+\]$/);
      assert.equal(await fn(1), 6, "and it still calls the extension when called");
      await settle();
      assert.deepEqual(trap.escaped, []);
    } finally {
      trap.release();
    }
  });
});
