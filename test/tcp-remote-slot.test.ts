// The remote interface for the Ray side, with a "job" that is a local process: loadRemote() over a real slot.

import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { ExtensionCrashedError, RemoteError } from "../src/index.js";
import { loadRemote, type RemoteJob } from "../src/remote/slot.js";
import { localJob } from "./remote-job.js";
import { makeManager } from "./helpers.js";

describe("loadRemote", () => {
  const manager = makeManager();
  after(() => manager.close());

  it("serves calls, host services and errors from a guest it did not spawn, and a killed job crashes its calls", async () => {
    manager.provide("Counter", {
      async add(n: number) {
        return n * 2;
      },
    });
    const ext = await loadRemote(manager, {
      name: "tcp_remote",
      modulePath: "/nowhere/on/the/host",
      launch: async (env) => localJob(env),
    });
    assert.equal(manager.get("tcp_remote"), ext);
    assert.deepEqual(await ext.call("echo", [{ b: new Uint8Array([7]) }]), { b: new Uint8Array([7]) });
    assert.equal(await ext.call("bump", [21]), 42);
    await assert.rejects(
      ext.call("raise_value_error", ["far"]),
      (e: unknown) => e instanceof RemoteError && e.remoteType === "ValueError",
    );
    const call = ext.call("sleep_forever");
    await new Promise((resolve) => ext.once("sleeping", resolve));
    process.kill(ext.pid!, "SIGKILL");
    await assert.rejects(call, ExtensionCrashedError);
  });

  it("stop() shuts the remote guest down cleanly and unregisters it", async () => {
    let job: RemoteJob | undefined;
    const ext = await loadRemote(manager, {
      name: "tcp_remote_stop",
      modulePath: "/nowhere",
      launch: async (env) => (job = await localJob(env)),
    });
    assert.equal(await ext.call("echo", ["hi"]), "hi");
    await ext.stop();
    assert.equal((await job!.exited).exitCode, 0, "the guest ran its shutdown and exited 0");
    assert.equal(manager.get("tcp_remote_stop"), undefined);
    assert.equal(ext.state, "stopped");
  });
});
