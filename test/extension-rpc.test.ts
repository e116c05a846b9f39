// Real processes, real venv: values, errors, services, callbacks, nesting, concurrency, events, cancel.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { CallAbortedError, RemoteError, UnknownMethodError, type Extension } from "../src/index.js";
import { fixture, makeManager } from "./helpers.js";

class KeyError extends Error {
  override name = "KeyError";
}

describe("a loaded extension", () => {
  const manager = makeManager();
  let ext: Extension;
  let counter = 0;

  before(async () => {
    manager.provide("Counter", {
      async add(n: number) {
        counter += n;
        return counter;
      },
    });
    manager.provide("Nest", { down: (depth: number) => ext.call("nested", [depth]) });
    manager.provide("Failing", {
      explode(kind: string) {
        if (kind === "type") throw new TypeError("wrong type on the host");
        if (kind === "key") throw new KeyError("no such key on the host");
        throw new Error("plain host failure");
      },
    });
    ext = await manager.load({ name: "rpc_echo", modulePath: fixture("echo_ext"), sandbox: { mode: "disabled" } });
  });
  after(() => manager.close());

  it("reports its public methods only, and ran the lifecycle hooks in order", async () => {
    assert.ok(ext.methods.includes("echo"));
    assert.ok(!ext.methods.some((m) => m.startsWith("_")));
    assert.ok(!ext.methods.includes("emit_event"));
    assert.equal(ext.extensionClass, "echo_ext:EchoExtension");
    assert.deepEqual(await ext.call("lifecycle"), ["before_module_loaded", "on_module_loaded:echo_ext"]);
  });

  it("round-trips every wire value type", async () => {
    const value = {
      nothing: null,
      yes: true,
      no: false,
      int: 42,
      negative: -7,
      float: 2.5,
      text: "héllo ✓ 日本",
      list: [1, [2, [3, []]]],
      nested: { a: { b: { c: "deep" } } },
      empty: {},
      dollar: { $tag: "not a tag" },
      big: 2n ** 64n,
      nan: NaN,
      inf: Infinity,
      ninf: -Infinity,
      bytes: new Uint8Array([0, 1, 2, 255]),
    };
    const back = (await ext.proxy.echo!(value)) as Record<string, unknown>;
    assert.deepEqual(back, { ...value, bytes: new Uint8Array([0, 1, 2, 255]) });
    assert.deepEqual(await ext.call("types_of", [2n ** 64n, 1.5, new Uint8Array(3), [1], { a: 1 }, null]), [
      "int",
      "float",
      "bytes",
      "list",
      "dict",
      "NoneType",
    ]);
  });

  it("carries large bytes and big ints from Python", async () => {
    const bytes = (await ext.call("make_bytes", [100_000])) as Uint8Array;
    assert.ok(bytes instanceof Uint8Array);
    assert.equal(bytes.length, 100_000);
    assert.equal(bytes[257], 1);
    assert.equal(await ext.call("big_int"), 2n ** 70n + 1n);
    assert.deepEqual(await ext.call("special_floats"), [NaN, Infinity, -Infinity]);
  });

  it("runs sync methods", async () => {
    assert.equal(await ext.call("sync_add", [2, 3]), 5);
  });

  it("raises Python exceptions as RemoteError with type, message and traceback", async () => {
    const error = await ext.call("raise_value_error", ["bad input"]).catch((e: unknown) => e);
    assert.ok(error instanceof RemoteError);
    assert.equal(error.remoteType, "ValueError");
    assert.match(error.message, /bad input/);
    assert.match(error.remoteTraceback, /raise_value_error/);
  });

  it("refuses private, framework and missing methods on the host, before anything is sent", async () => {
    for (const method of ["_secret", "__init__", "emit_event", "no_such_method"]) {
      const error = await ext.call(method).catch((e: unknown) => e);
      assert.ok(error instanceof UnknownMethodError, method);
      assert.equal(error.method, method);
    }
  });

  it("lets Python call host services through ProxiedSingleton, and keeps local_execution local", async () => {
    const before = counter;
    assert.equal(await ext.call("bump", [5]), before + 5);
    assert.equal(await ext.call("counter_where"), `local:${ext.pid}`);
  });

  it("maps host errors to Python builtins where they exist", async () => {
    assert.deepEqual(await ext.call("host_error", ["type"]), {
      type: "TypeError",
      message: "wrong type on the host",
      has_traceback: true,
    });
    assert.deepEqual(await ext.call("host_error", ["key"]), {
      type: "KeyError",
      message: "'no such key on the host'",
      has_traceback: true,
    });
    const plain = (await ext.call("host_error", ["plain"])) as { type: string };
    assert.equal(plain.type, "RemoteError");
    assert.match(String(await ext.call("missing_service")), /^LookupError/);
  });

  it("nests calls host -> extension -> host ... to depth 20", async () => {
    assert.equal(await ext.call("nested", [20]), "bottom");
  });

  it("passes callables both ways", async () => {
    const seen: number[] = [];
    assert.equal(
      await ext.call("call_back", [
        async (x: number) => {
          seen.push(x);
          return x * 2;
        },
        21,
      ]),
      42,
    );
    assert.deepEqual(seen, [21]);
    const adder = (await ext.call("make_adder", [10])) as (x: number) => Promise<number>;
    assert.equal(typeof adder, "function");
    assert.equal(await adder(5), 15);
  });

  it("keeps hundreds of calls in flight", async () => {
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => ext.call("slow_echo", [i, 0.01])));
    assert.deepEqual(
      results,
      Array.from({ length: 500 }, (_, i) => i),
    );
  });

  it("delivers events to listeners and drops unheard ones", async () => {
    const received = new Promise((resolve) => ext.once("progress", resolve));
    assert.equal(await ext.call("emit", ["progress", { value: 5 }]), true);
    assert.deepEqual(await received, { value: 5 });
    assert.equal(await ext.call("emit", ["nobody_listens", { value: 1 }]), true);
  });

  it("cancels a call with an AbortSignal: the coroutine gets CancelledError", async () => {
    const controller = new AbortController();
    const sleeping = new Promise((resolve) => ext.once("sleeping", resolve));
    const pending = ext.call("sleep_forever", [], { signal: controller.signal });
    await sleeping; // the coroutine is running: the cancel must reach it, not an unstarted task
    controller.abort(new Error("user pressed stop"));
    const error = await pending.catch((e: unknown) => e);
    assert.ok(error instanceof CallAbortedError);
    assert.equal((error.cause as Error).message, "user pressed stop");
    let cancelled: unknown = [];
    for (let i = 0; i < 50 && (cancelled as string[]).length === 0; i++) cancelled = await ext.call("was_cancelled");
    assert.deepEqual(cancelled, ["sleep_forever"]);
  });

  it("times out a call with timeoutMs", async () => {
    const error = await ext.call("sleep_forever", [], { timeoutMs: 100 }).catch((e: unknown) => e);
    assert.ok(error instanceof CallAbortedError);
    assert.equal(error.timedOut, true);
    assert.equal(await ext.call("echo", ["still fine"]), "still fine");
  });

  it("forwards stdout and stderr line by line as events", async () => {
    const out = new Promise((resolve) => ext.once("stdout", resolve));
    const err = new Promise((resolve) => ext.once("stderr", resolve));
    await ext.call("print_lines", ["to stdout", "to stderr"]);
    assert.equal(await out, "to stdout");
    assert.equal(await err, "to stderr");
  });
});
