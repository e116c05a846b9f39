// Crash after crash (and stops), with tensors and bytes in flight: the host keeps no fd, segment, timer, listener or process of them.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createHook } from "node:async_hooks";
import { readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import {
  ExtensionClosedError,
  ExtensionCrashedError,
  ExtensionLoadError,
  ProtocolError,
  Tensor,
  liveSegments,
  type Extension,
  type ExtensionOptions,
} from "../src/index.js";
import { fixture, isAlive, makeManager, waitFor } from "./helpers.js";
import { NUMPY } from "./tensor-helpers.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const manager = makeManager();
after(() => manager.close());

const BACKENDS: { label: string; sandbox: ExtensionOptions["sandbox"] }[] = [
  { label: "under bwrap", sandbox: { backend: "bwrap" } },
  { label: "under Landlock", sandbox: { backend: "landlock" } },
  { label: "with the sandbox disabled", sandbox: { mode: "disabled" } },
];
const MODES = ["sigkill", "exit", "protocol", "failedStart", "stop"] as const;
const CYCLES = 3;

/**
 * The library's timers alive now, unref'd ones included (getActiveResourcesInfo omits those): an async hook keeps
 * each Timeout that code under src/ made until it fires or is cleared (the test's own polling is not counted).
 */
const liveTimers = new Set<number>();
createHook({
  init: (id, type) => {
    if (type === "Timeout" && /\/src\/[^\n]*\n/.test(new Error().stack ?? "")) liveTimers.add(id);
  },
  destroy: (id) => void liveTimers.delete(id),
}).enable();

function childPids(): number[] {
  const children: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(ppid) === process.pid && state !== "Z") children.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return children;
}

/** The private folders (HOME, tmp) of this file's extensions that exist now. */
function privateDirCount(): number {
  return readdirSync(tmpdir()).filter((entry) => entry.startsWith("pyisolate-res_floods_leak")).length;
}

function counts() {
  gc();
  return {
    fds: readdirSync("/proc/self/fd").length,
    segments: liveSegments().length,
    timers: liveTimers.size,
    exitListeners: process.listenerCount("exit"),
    signalListeners: process.listenerCount("SIGTERM") + process.listenerCount("SIGINT"),
    handles: process.getActiveResourcesInfo().filter((r) => r !== "TTYWrap").length,
    children: childPids().length,
    extensions: manager.list().length,
    // Each load's private HOME and tmp, removed when it ends.
    privateDirs: privateDirCount(),
  };
}

/** Loads, puts tensors and bytes in flight, then ends it by `mode`; returns what the in-flight call rejected with. */
async function crashOnce(
  name: string,
  sandbox: ExtensionOptions["sandbox"],
  mode: (typeof MODES)[number],
): Promise<void> {
  const options = { name, modulePath: fixture("res_floods_crash"), dependencies: NUMPY, sandbox };
  if (mode === "failedStart") {
    await assert.rejects(manager.load({ ...options, env: { RES_FLOODS_FAIL_START: "1" } }), ExtensionLoadError);
    return;
  }
  const ext: Extension = await manager.load(options);
  const exited = new Promise((resolve) => ext.once("exit", resolve));
  const held = Tensor.zeros([1 << 20], "uint8");
  assert.equal(await ext.call("hold", [held]), 1);
  const echoed = await ext.call("echo", [Tensor.zeros([4096], "float32")]);
  assert.ok(echoed instanceof Tensor);
  const inFlight = ext.call("wait_forever", [Tensor.zeros([1 << 16], "uint8")]);
  // Handled from now on: it settles while the switch below awaits other things.
  const bytes = assert.rejects(ext.call("wait_forever", [Buffer.alloc(1 << 16, 7)]));
  const pid = ext.pid!;
  const group = ext.processGroup!;
  switch (mode) {
    case "sigkill":
      process.kill(pid, "SIGKILL");
      await assert.rejects(inFlight, ExtensionCrashedError);
      break;
    case "exit":
      await assert.rejects(ext.call("exit_now"), ExtensionCrashedError);
      await assert.rejects(inFlight, ExtensionCrashedError);
      break;
    case "protocol":
      await ext.call("bad_frame").catch(() => undefined);
      await assert.rejects(inFlight, ProtocolError);
      break;
    case "stop": {
      const closed = assert.rejects(inFlight, ExtensionClosedError);
      await ext.stop();
      await closed;
      break;
    }
  }
  await bytes;
  await exited;
  await waitFor(() => !isAlive(pid) && !groupAlive(group), 10_000, "the extension's processes to be gone");
}

function groupAlive(group: number): boolean {
  try {
    process.kill(-group, 0);
    return true;
  } catch {
    return false;
  }
}

for (const { label, sandbox } of BACKENDS) {
  test(`after ${CYCLES} rounds of SIGKILL, os._exit, a protocol error, a failed start and a stop, ${label}, the host holds what it held before`, async () => {
    const name = `res_floods_leak_${sandbox?.backend ?? "none"}`;
    // One round first: lazy things (the native addon, the sandbox detection, the venv) are made once per host.
    for (const mode of MODES) await crashOnce(name, sandbox, mode);
    // The start is taken once the warm-up (and the test before, whose folders share the prefix) has let go of its
    // segments and private folders: a removal still under way would read as a folder this test got back.
    await waitFor(
      () => (gc(), liveSegments().length === 0 && privateDirCount() === 0),
      10_000,
      "warm-up segments and private folders released",
    );
    const start = counts();
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      for (const mode of MODES) await crashOnce(name, sandbox, mode);
    }
    // Checked at once (after two turns, for the async hook's destroy calls to arrive): a timer that merely expires
    // later, a grace period of seconds, is still held now.
    for (let turn = 0; turn < 2; turn++) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(liveTimers.size, start.timers, "no timer of a dead extension outlives its exit");
    // Drops that finish on the next turns (the fd socket's close, a report timer) are given a moment, not forever.
    let end = counts();
    await waitFor(
      () => JSON.stringify((end = counts())) === JSON.stringify(start),
      10_000,
      "the counts to come back",
    ).catch(() => undefined);
    console.log(`leaks ${label}: start ${JSON.stringify(start)} end ${JSON.stringify(end)}`);
    assert.deepEqual(end, start);
  });
}
