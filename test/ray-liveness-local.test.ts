// The liveness check of a remote session without a cluster: loadRemote() with a "job" that is a local process. A
// frozen guest (SIGSTOP: its sockets stay open) is given up and its call fails; a host whose own event loop stalls
// longer than the timeout does not take that for the guest's silence.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, describe, it } from "node:test";
import { ExtensionCrashedError } from "../src/index.js";
import { loadRemote, type RemoteJob } from "../src/remote/slot.js";
import { RUNTIME_ROOT } from "../src/runtime-paths.js";
import { fixture, makeManager } from "./helpers.js";

const LIVENESS = { intervalMs: 100, timeoutMs: 600 };

/** `python -m pyisolate._guest.remote` here, as a Ray job would start it on its node. */
function localJob(env: Record<string, string>): Promise<RemoteJob> {
  const child = spawn(process.env.PYTHON ?? "python3", ["-m", "pyisolate._guest.remote"], {
    cwd: RUNTIME_ROOT,
    env: { PATH: process.env.PATH, PYTHONPATH: RUNTIME_ROOT, PYISOLATE_MODULE_PATH: fixture("echo_ext"), ...env },
    stdio: ["ignore", "ignore", "ignore"],
  });
  const exited = new Promise<{ exitCode: number | null; signal: NodeJS.Signals | null; stderrTail: string[] }>(
    (resolve) => child.once("close", (exitCode, signal) => resolve({ exitCode, signal, stderrTail: [] })),
  );
  return Promise.resolve({ pid: child.pid, exited, kill: () => child.kill("SIGKILL") });
}

describe("a remote session's liveness check", () => {
  const manager = makeManager();
  after(() => manager.close());

  it("gives up a frozen guest: its call fails with ExtensionCrashedError that says no liveness answer came", async (t) => {
    const ext = await loadRemote(manager, {
      name: "live_frozen",
      modulePath: "/nowhere",
      liveness: LIVENESS,
      launch: async (env) => localJob(env),
    });
    const call = ext.call("sleep_forever");
    await new Promise((resolve) => ext.once("sleeping", resolve));
    const pid = ext.pid!;
    const frozenAt = Date.now();
    process.kill(pid, "SIGSTOP");
    try {
      await assert.rejects(call, (error: Error) => {
        assert.ok(error instanceof ExtensionCrashedError, String(error));
        assert.deepEqual(error.stderrTail, [
          "pyisolate: no liveness answer within 600 ms: the node is lost, frozen or cut off",
        ]);
        assert.equal(error.signal, "SIGKILL", "its job was stopped");
        return true;
      });
    } finally {
      try {
        process.kill(pid, "SIGCONT");
      } catch {
        // Killed already, as it should be.
      }
    }
    t.diagnostic(`rejected ${Date.now() - frozenAt} ms after the freeze`);
    assert.equal(manager.get("live_frozen"), undefined);
  });

  it("takes a stall of the host's own event loop, longer than the timeout, for no silence of the guest", async () => {
    const ext = await loadRemote(manager, {
      name: "live_host_stall",
      modulePath: "/nowhere",
      liveness: LIVENESS,
      launch: async (env) => localJob(env),
    });
    let crashed: unknown;
    ext.on("crash", (error) => (crashed = error));
    assert.equal(await ext.call("echo", ["before"]), "before");
    // A ping left out (the guest held for less than the timeout), then the host computes for longer than the
    // timeout while the guest, running again, answers: the answer waits in the socket when the host's timers run.
    process.kill(ext.pid!, "SIGSTOP");
    await new Promise((resolve) => setTimeout(resolve, 2 * LIVENESS.intervalMs));
    process.kill(ext.pid!, "SIGCONT");
    const until = performance.now() + 2 * LIVENESS.timeoutMs;
    while (performance.now() < until);
    await new Promise((resolve) => setTimeout(resolve, 3 * LIVENESS.intervalMs));
    assert.equal(crashed, undefined);
    assert.equal(ext.state, "ready");
    assert.equal(await ext.call("echo", ["after"]), "after");
    await ext.stop();
  });
});
