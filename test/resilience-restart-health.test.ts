// The health heartbeat with real processes: a busy Python loop and the GIL held in C are both found within the
// configured time and restarted, under bwrap, Landlock and with the sandbox disabled; a slow await is not flagged.

import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, describe, it } from "node:test";
import { ExtensionUnresponsiveError, ProtocolError, type Extension, type SandboxOptions } from "../src/index.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import type { SandboxCapabilities } from "../src/sandbox/types.js";
import { fixture, isAlive, makeManager, waitFor } from "./helpers.js";
import { SANDBOX_MODES, unavailableMode } from "./sandbox-modes.js";

const MODULE = fixture("res_restart_ext");
const HEALTH = { intervalMs: 100, timeoutMs: 1000 };
/** The "within a configurable time": timeoutMs plus two ping intervals, with room for a loaded 2-core host. */
const DETECT_BOUND_MS = 8000;
const MODES = SANDBOX_MODES;

let caps: SandboxCapabilities;
const manager = makeManager();
before(async () => {
  caps = await detectSandbox();
});
after(() => manager.close());

const unavailable = (sandbox: SandboxOptions): string | undefined => unavailableMode(caps, sandbox);

/** Calls `method` (which hangs the guest for 30 s) and returns the error, how long it took, and the crash event's error. */
async function hangAndWait(
  ext: Extension,
  method: string,
  args: unknown[],
): Promise<{ error: unknown; tookMs: number; crash: unknown }> {
  const crash = once(ext, "crash");
  const ready = once(ext, "ready");
  const started = performance.now();
  const error = await ext.call(method, args).catch((e: unknown) => e);
  const tookMs = performance.now() - started;
  const [crashError] = await crash;
  await ready;
  return { error, tookMs, crash: crashError };
}

for (const mode of MODES) {
  describe(`the heartbeat under ${mode.label}`, () => {
    let ext: Extension | undefined;
    let skip: string | undefined;
    before(async () => {
      skip = unavailable(mode.sandbox);
      if (!skip) {
        ext = await manager.load({
          name: `res_health_${mode.tag}`,
          modulePath: MODULE,
          sandbox: mode.sandbox,
          health: HEALTH,
          restart: { maxRestarts: 10, backoffMs: 50 },
        });
      }
    });
    after(() => ext?.stop());

    it("finds the event loop blocked by a busy Python loop in a sync method, and restarts it", async (t) => {
      if (skip) return t.skip(skip);
      const pid = ext!.pid!;
      const { error, tookMs, crash } = await hangAndWait(ext!, "busy", [30]);
      assert.ok(error instanceof ExtensionUnresponsiveError, String(error));
      assert.equal(error.reason, "loop-stalled", "the thread answered, the loop did not run");
      assert.equal(crash, error, "treated as a crash, with the same error");
      assert.ok(tookMs < DETECT_BOUND_MS, `found in ${Math.round(tookMs)} ms`);
      assert.equal(await ext!.call("echo", ["back"]), "back");
      assert.notEqual(ext!.pid, pid);
      await waitFor(() => !isAlive(pid), 5000, "the hung process to be killed");
    });

    it("finds the GIL held in C code (other threads truly stop), and restarts it", async (t) => {
      if (skip) return t.skip(skip);
      // The control first: during a C sleep that releases the GIL a Python thread runs hundreds of times; during one
      // that holds it (ctypes.PyDLL) it never runs, so neither can a heartbeat thread. The probe counts only the part
      // of the sleep it can prove was inside C (see gil_probe), so its edges on a loaded machine do not count.
      type Probe = { before: number; during: number; covered: number };
      const released = (await ext!.call("gil_probe", [0.3, false])) as Probe;
      const held = (await ext!.call("gil_probe", [0.3, true])) as Probe;
      assert.ok(released.during > 20, `a thread runs while the GIL is free: ${JSON.stringify(released)}`);
      assert.ok(held.before > 0, `the counting thread ran before the sleep: ${JSON.stringify(held)}`);
      assert.ok(held.covered > 0.1, `most of the sleep is provably inside C: ${JSON.stringify(held)}`);
      assert.equal(held.during, 0, `no thread runs while C holds the GIL: ${JSON.stringify(held)}`);
      const pid = ext!.pid!;
      const { error, tookMs } = await hangAndWait(ext!, "hold_gil", [30]);
      assert.ok(error instanceof ExtensionUnresponsiveError, String(error));
      assert.equal(error.reason, "no-answer", "the heartbeat thread could not answer");
      assert.ok(error.stalledMs > HEALTH.timeoutMs);
      assert.ok(tookMs < DETECT_BOUND_MS, `found in ${Math.round(tookMs)} ms`);
      assert.equal(await ext!.call("echo", ["back"]), "back");
      await waitFor(() => !isAlive(pid), 5000, "the hung process to be killed");
    });

    it("does not flag a healthy call that awaits longer than timeoutMs", async (t) => {
      if (skip) return t.skip(skip);
      const pid = ext!.pid;
      let crashed = false;
      ext!.once("crash", () => (crashed = true));
      assert.equal(await ext!.call("slow", [2.5]), "slept");
      assert.equal(crashed, false);
      assert.equal(ext!.pid, pid);
    });
  });
}

describe("the heartbeat's control", () => {
  it("lets the same busy loop run to its end with health: false, and without a restart policy leaves it crashed", async () => {
    const off = await manager.load({
      name: "res_health_off",
      modulePath: MODULE,
      sandbox: { mode: "disabled" },
      health: false,
    });
    const on = await manager.load({
      name: "res_health_norestart",
      modulePath: MODULE,
      sandbox: { mode: "disabled" },
      health: HEALTH,
    });
    try {
      const [offResult, onResult] = await Promise.all([
        off.call("busy", [2.5]),
        on.call("busy", [30]).catch((e: unknown) => e),
      ]);
      assert.equal(typeof offResult, "number", "with health off the busy call completes");
      assert.ok(onResult instanceof ExtensionUnresponsiveError, String(onResult));
      assert.equal(on.state, "crashed");
      assert.equal(await on.call("echo", [1]).catch((e: unknown) => e), onResult, "later calls get the same error");
    } finally {
      await off.stop();
    }
  });
});

describe("a hostile heartbeat", () => {
  it("stops an extension that writes unasked on its heartbeat socket with a ProtocolError; the host keeps serving others", async () => {
    const liar = await manager.load({
      name: "res_health_liar",
      modulePath: MODULE,
      sandbox: { mode: "disabled" },
      health: HEALTH,
    });
    const other = await manager.load({
      name: "res_health_other",
      modulePath: MODULE,
      sandbox: { mode: "disabled" },
      health: HEALTH,
    });
    try {
      const error = await liar.call("spam_heartbeat").catch((e: unknown) => e);
      assert.ok(error instanceof ProtocolError, String(error));
      assert.match(error.message, /heartbeat/);
      assert.equal(liar.state, "crashed");
      assert.equal(await other.call("echo", ["still here"]), "still here");
    } finally {
      await other.stop();
    }
  });
});
