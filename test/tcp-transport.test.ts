// One scenario list, run over both transports: the Unix sockets (fd 3) and TCP+TLS to the cluster listener.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  CallAbortedError,
  ExtensionCrashedError,
  ExtensionUnresponsiveError,
  RemoteError,
  type Extension,
  type ExtensionManager,
} from "../src/index.js";
import { Tensor } from "../src/tensor/tensor.js";
import { fixture, makeManager } from "./helpers.js";
import { NUMPY } from "./tensor-helpers.js";

for (const transport of ["unix", "tcp"] as const) {
  describe(`over the ${transport} transport`, () => {
    let manager: ExtensionManager;
    let ext: Extension;
    let counter = 0;

    before(async () => {
      manager = makeManager();
      manager.provide("Counter", {
        async add(n: number) {
          counter += n;
          return counter;
        },
      });
      manager.provide("Nest", { down: (depth: number) => ext.call("nested", [depth]) });
      ext = await manager.load({
        name: `tcp_echo_${transport}`,
        modulePath: fixture("echo_ext"),
        sandbox: { mode: "disabled" },
        transport,
      });
    });
    after(() => manager.close());

    it("round-trips values, bytes and big numbers", async () => {
      const value = {
        text: "héllo ✓",
        list: [1, [2, []]],
        big: 2n ** 64n,
        nan: NaN,
        bytes: new Uint8Array([0, 1, 255]),
      };
      assert.deepEqual(await ext.call("echo", [value]), value);
      const bytes = (await ext.call("make_bytes", [300_000])) as Uint8Array;
      assert.equal(bytes.length, 300_000);
      assert.equal(bytes[257], 1);
    });

    it("calls host services and nests calls both ways", async () => {
      counter = 0;
      assert.equal(await ext.call("bump", [5]), 5);
      assert.equal(await ext.call("nested", [4]), "bottom");
    });

    it("calls back a JavaScript function and returns a Python one", async () => {
      assert.equal(await ext.call("call_back", [async (x: number) => x * 3, 7]), 21);
      const adder = (await ext.call("make_adder", [10])) as (x: number) => Promise<number>;
      assert.equal(await adder(5), 15);
    });

    it("rejects with the Python error type and its traceback", async () => {
      const error = await ext.call("raise_value_error", ["bad input"]).catch((e: unknown) => e);
      assert.ok(error instanceof RemoteError);
      assert.equal(error.remoteType, "ValueError");
      assert.match(error.remoteTraceback ?? "", /raise_value_error/);
    });

    it("cancels a call by its signal and by its timeout, and the guest sees the cancellation", async () => {
      const controller = new AbortController();
      const call = ext.call("sleep_forever", [], { signal: controller.signal });
      await new Promise((resolve) => ext.once("sleeping", resolve));
      controller.abort();
      await assert.rejects(call, CallAbortedError);
      await assert.rejects(
        ext.call("slow_echo", [1, 30], { timeoutMs: 100 }),
        (e: unknown) => e instanceof CallAbortedError && e.name === "TimeoutError",
      );
      assert.deepEqual(await ext.call("was_cancelled"), ["sleep_forever"]);
    });

    it("delivers events", async () => {
      const got = new Promise((resolve) => ext.once("progress", resolve));
      await ext.call("emit", ["progress", { done: 3 }]);
      assert.deepEqual(await got, { done: 3 });
    });

    it("ends in-flight calls with ExtensionCrashedError when the guest dies", async () => {
      const local = makeManager();
      try {
        const victim = await local.load({
          name: `tcp_victim_${transport}`,
          modulePath: fixture("echo_ext"),
          sandbox: { mode: "disabled" },
          transport,
        });
        const call = victim.call("sleep_forever");
        await new Promise((resolve) => victim.once("sleeping", resolve));
        process.kill(victim.pid!, "SIGKILL");
        await assert.rejects(call, ExtensionCrashedError);
      } finally {
        await local.close();
      }
    });
  });
}

describe("tensors over TCP", () => {
  const manager = makeManager();
  after(() => manager.close());

  it("cross by value both ways, layout and dtype kept", async () => {
    const ext = await manager.load({
      name: "tcp_tensors",
      modulePath: fixture("tensor_ext"),
      dependencies: NUMPY,
      sandbox: { mode: "disabled" },
      transport: "tcp",
    });
    const t = Tensor.from(new Int16Array(Array.from({ length: 12 }, (_, i) => i)), [3, 4]);
    const view = t.transpose(0, 1);
    assert.deepEqual(await ext.call("info", [view]), {
      type: "numpy",
      dtype: "int16",
      shape: [4, 3],
      strides: [3, 1],
      writeable: true,
      shared: false,
    });
    assert.deepEqual(await ext.call("values", [view]), [...view.toArray()]);
    const made = (await ext.call("make", [5, "numpy", true, false])) as Tensor;
    assert.equal(made.isShared, false);
    assert.deepEqual([...made.toArray()], [0, 1, 2, 3, 4]);
  });
});

describe("the heartbeat over TCP", () => {
  const manager = makeManager();
  after(() => manager.close());

  it("rides a second authenticated connection and finds an event loop stalled by a busy sync method", async () => {
    const ext = await manager.load({
      name: "tcp_health",
      modulePath: fixture("echo_ext"),
      sandbox: { mode: "disabled" },
      transport: "tcp",
      health: { intervalMs: 100, timeoutMs: 1000 },
    });
    assert.equal(await ext.call("echo", [1]), 1);
    const error = await ext.call("busy", [20]).catch((e: unknown) => e);
    assert.ok(error instanceof ExtensionUnresponsiveError, String(error));
    assert.equal(error.reason, "loop-stalled");
  });
});
