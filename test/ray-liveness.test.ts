// A node that freezes without closing its connections, on a real two-node Ray cluster: the host's liveness ping
// goes unanswered, the call in flight fails with ExtensionCrashedError (Ray's job status in it) within 5 s, the job is
// stopped, and the restart policy brings the extension back on a fresh job.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { ExtensionCrashedError } from "../src/index.js";
import { fixture } from "./helpers.js";
import { jobsLeftAfterWait, onRayCluster, startRayCluster } from "./ray-helpers.js";

const started = await startRayCluster();
const skip = typeof started === "string" ? started : false;
const ON_NODE_B = { ray: { resources: { node_b: 0.1 } } };

/** `pid` and every process below it (from /proc: the guest's supervisor, the extension, what it started). */
function tree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // Gone meanwhile.
    }
  }
  const all = [pid];
  for (let i = 0; i < all.length; i++) all.push(...(children.get(all[i]!) ?? []));
  return all;
}

function signalAll(pids: number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
};

describe("a frozen node on a two-node Ray cluster", { skip }, () => {
  const { client, manager } = onRayCluster(started);

  it("rejects a call in flight within 5 s of its guest freezing, stops the job and restarts on a fresh one", async (t) => {
    const ext = await manager.load({
      name: "ray_probe_frozen",
      modulePath: fixture("ray_probe"),
      placement: ON_NODE_B,
      restart: { maxRestarts: 1, backoffMs: 200 },
    });
    const firstJob = ext.placement?.jobId as string;
    const firstPid = ext.pid!;
    const readyAgain = new Promise((resolve) => ext.once("restart", () => ext.once("ready", resolve)));
    const call = ext.call("sleep", [120]);
    call.catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 500));
    // SIGSTOP keeps every socket open and the kernel still ACKs: only an unanswered ping tells.
    const frozen = tree(firstPid);
    const frozenAt = Date.now();
    signalAll(frozen, "SIGSTOP");
    let elapsed = 0;
    try {
      await assert.rejects(call, (error: Error) => {
        elapsed = Date.now() - frozenAt;
        assert.ok(error instanceof ExtensionCrashedError, String(error));
        assert.match(error.message, /Ray job raysubmit_\w+ (RUNNING|STOPPED|FAILED)/);
        assert.match(error.stderrTail.join("\n"), /no liveness answer within 2000 ms/);
        assert.ok(error.rayJobStatus);
        return true;
      });
    } finally {
      signalAll(frozen, "SIGCONT");
    }
    t.diagnostic(`the call was rejected ${elapsed} ms after the guest on node_b was frozen`);
    assert.ok(elapsed < 5000, `rejected after ${elapsed} ms`);
    // The restart policy fired: a new job, a new guest, and it answers.
    await readyAgain;
    assert.notEqual(ext.placement?.jobId, firstJob);
    assert.notEqual(ext.pid, firstPid);
    assert.deepEqual(await ext.call("echo", [{ back: true }]), { back: true });
    // The frozen job was stopped, and its guest ended once it could run again.
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && ((await client.job(firstJob)).status === "RUNNING" || frozen.some(alive)))
      await new Promise((resolve) => setTimeout(resolve, 250));
    assert.ok(["STOPPED", "FAILED"].includes((await client.job(firstJob)).status));
    assert.deepEqual(frozen.filter(alive), []);
    await ext.stop();
    assert.deepEqual(await jobsLeftAfterWait(client), []);
  });
});
