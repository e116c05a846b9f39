// Restarts with real processes: a crashed extension comes back as the same object under bwrap, Landlock and with the
// sandbox disabled; in-flight calls are never replayed; queued calls wait or reject; the policy runs out; stop ends it.

import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, describe, it } from "node:test";
import {
  CallAbortedError,
  ExtensionClosedError,
  ExtensionCrashedError,
  type Extension,
  type ExtensionOptions,
  type SandboxOptions,
} from "../src/index.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import type { SandboxCapabilities } from "../src/sandbox/types.js";
import { fixture, isAlive, makeManager, waitFor } from "./helpers.js";
import { SANDBOX_MODES, unavailableMode } from "./sandbox-modes.js";

const MODULE = fixture("res_restart_ext");
const MODES = SANDBOX_MODES;

let caps: SandboxCapabilities;
const manager = makeManager();
before(async () => {
  caps = await detectSandbox();
});
after(() => manager.close());

const unavailable = (sandbox: SandboxOptions): string | undefined => unavailableMode(caps, sandbox);

/** Records the lifecycle events of `ext` in order. */
function record(ext: Extension): string[] {
  const seen: string[] = [];
  for (const name of ["crash", "restart", "ready"]) ext.on(name, () => seen.push(name));
  ext.on("stateChange", (state: string) => seen.push(`state:${state}`));
  return seen;
}

function load(name: string, extra: Partial<ExtensionOptions>): Promise<Extension> {
  return manager.load({ name, modulePath: MODULE, sandbox: { mode: "disabled" }, ...extra });
}

for (const mode of MODES) {
  describe(`a crashed extension under ${mode.label}`, () => {
    let ext: Extension | undefined;
    let skip: string | undefined;
    before(async () => {
      skip = unavailable(mode.sandbox);
      if (!skip)
        ext = await load(`res_restart_${mode.tag}`, {
          sandbox: mode.sandbox,
          restart: { maxRestarts: 10, backoffMs: 50 },
        });
    });
    after(() => ext?.stop());

    it("comes back as the same Extension with a new pid, serving again, with crash, restart, ready in order", async (t) => {
      if (skip) return t.skip(skip);
      const seen = record(ext!);
      const firstPid = ext!.pid!;
      assert.equal(await ext!.call("echo", ["before"]), "before");
      const ready = once(ext!, "ready");
      const crash = once(ext!, "crash");
      const died = await ext!.call("die", [3]).catch((error: Error) => error);
      assert.ok(died instanceof ExtensionCrashedError, String(died));
      assert.equal(died.exitCode, 3);
      assert.equal((await crash)[0], died, "the crash event carries the error the calls got");
      await ready;
      assert.equal(manager.get(`res_restart_${mode.tag}`), ext, "the manager still holds the same object");
      assert.equal(await ext!.call("echo", ["after"]), "after");
      assert.equal(await ext!.proxy.echo!(5), 5);
      assert.notEqual(ext!.pid, firstPid);
      await waitFor(() => !isAlive(firstPid), 5000, "the crashed process to be gone");
      assert.deepEqual(seen, ["crash", "state:restarting", "restart", "state:ready", "ready"]);
      assert.equal(ext!.state, "ready");
    });

    it("rejects the call in flight at a kill with the crash error and never replays it", async (t) => {
      if (skip) return t.skip(skip);
      const before = ((await ext!.call("marks")) as string[]).length;
      const hanging = ext!.call("mark_and_hang", [`call-${mode.tag}`]).catch((error: Error) => error);
      await waitFor(async () => ((await ext!.call("marks")) as string[]).length > before, 10_000, "the side effect");
      const ready = once(ext!, "ready");
      process.kill(ext!.pid!, "SIGKILL");
      const error = await hanging;
      assert.ok(error instanceof ExtensionCrashedError, String(error));
      assert.equal(error.signal, "SIGKILL");
      await ready;
      // The private HOME survives the restart: the side effect is there exactly once.
      const marks = (await ext!.call("marks")) as string[];
      assert.equal(marks.filter((m) => m === `call-${mode.tag}`).length, 1, JSON.stringify(marks));
    });
  });
}

describe("the restart policy", () => {
  it("stays crashed with the last error once maxRestarts are spent within windowMs", async () => {
    const ext = await load("res_restart_spent", { restart: { maxRestarts: 1, windowMs: 60_000, backoffMs: 10 } });
    const seen = record(ext);
    const ready = once(ext, "ready");
    await assert.rejects(ext.call("die", [3]), ExtensionCrashedError);
    await ready;
    const crashed = once(ext, "stateChange");
    await assert.rejects(ext.call("die", [4]), ExtensionCrashedError);
    assert.deepEqual(await crashed, ["crashed"]);
    assert.equal(ext.state, "crashed");
    assert.equal(ext.pid, undefined);
    const last = await ext.call("echo", [1]).catch((error: Error) => error);
    assert.ok(
      last instanceof ExtensionCrashedError && last.exitCode === 4,
      `the last crash, exit code 4: ${String(last)}`,
    );
    assert.deepEqual(
      seen.filter((e) => !e.startsWith("state:")),
      ["crash", "restart", "ready", "crash"],
    );
    await waitFor(
      () => manager.get("res_restart_spent") === undefined,
      5000,
      "the crashed extension to be unregistered",
    );
  });

  it("queues calls made during the restart (queueCalls), each bounded by its own timeout and signal", async () => {
    const ext = await load("res_restart_queue", { restart: { backoffMs: 1500 } });
    try {
      const ready = once(ext, "ready");
      await assert.rejects(ext.call("die", [3]), ExtensionCrashedError);
      assert.equal(ext.state, "restarting");
      assert.equal(ext.pid, undefined);
      const waits = ext.call("echo", ["queued"]);
      const short = ext.call("echo", ["short"], { timeoutMs: 100 }).catch((error: Error) => error);
      const controller = new AbortController();
      const aborted = ext.call("echo", ["aborted"], { signal: controller.signal }).catch((error: Error) => error);
      controller.abort(new Error("the caller gave up"));
      const timedOut = await short;
      assert.ok(timedOut instanceof CallAbortedError && timedOut.timedOut, String(timedOut));
      assert.ok(timedOut.cause instanceof ExtensionCrashedError, "the timeout says what it waited on");
      const abortError = await aborted;
      assert.ok(abortError instanceof CallAbortedError && !abortError.timedOut, String(abortError));
      assert.equal(ext.state, "restarting", "both settled before the restart");
      assert.equal(await waits, "queued");
      await ready;
    } finally {
      await ext.stop();
    }
  });

  it("bounds queued calls by queueTimeoutMs, and rejects them at once with queueCalls: false", async () => {
    const bounded = await load("res_restart_qtimeout", { restart: { backoffMs: 60_000, queueTimeoutMs: 100 } });
    const refusing = await load("res_restart_noqueue", { restart: { backoffMs: 60_000, queueCalls: false } });
    try {
      await assert.rejects(bounded.call("die", [3]), ExtensionCrashedError);
      const late = await bounded.call("echo", [1]).catch((error: Error) => error);
      assert.ok(late instanceof CallAbortedError && late.timedOut, String(late));
      const crash = await refusing.call("die", [5]).catch((error: Error) => error);
      const refused = await refusing.call("echo", [1]).catch((error: Error) => error);
      assert.equal(refusing.state, "restarting");
      assert.equal(refused, crash, "the call is refused with the crash that started the restart");
    } finally {
      await Promise.all([bounded.stop(), refusing.stop()]);
    }
  });

  it("ends cleanly when stopped during the backoff: queued calls reject, nothing restarts", async () => {
    const ext = await load("res_restart_stopbackoff", { restart: { backoffMs: 60_000 } });
    const seen = record(ext);
    const pid = ext.pid!;
    await assert.rejects(ext.call("die", [3]), ExtensionCrashedError);
    const queued = ext.call("echo", [1]).catch((error: Error) => error);
    await ext.stop();
    assert.equal(ext.state, "stopped");
    assert.ok((await queued) instanceof ExtensionClosedError);
    assert.ok(!seen.includes("restart"), seen.join());
    assert.ok(!isAlive(pid));
    assert.equal(manager.get("res_restart_stopbackoff"), undefined);
  });

  it("ends cleanly when the manager closes during a restart's start: the new process exits too", async () => {
    const own = makeManager();
    const ext = await own.load({
      name: "res_restart_closestart",
      modulePath: MODULE,
      sandbox: { mode: "disabled" },
      restart: { backoffMs: 0 },
    });
    const exits: unknown[] = [];
    ext.on("exit", (exit) => exits.push(exit));
    const restarting = once(ext, "restart");
    await assert.rejects(ext.call("die", [3]), ExtensionCrashedError);
    await restarting;
    await own.close();
    assert.equal(ext.state, "stopped");
    assert.equal(exits.length, 2, "the crashed process and the one the restart started both exited");
    await assert.rejects(ext.call("echo", [1]), ExtensionClosedError);
  });
});
