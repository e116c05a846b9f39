// Extensions placed on a real two-node Ray cluster through manager.load({ placement: { ray } }): placement by
// resource, calls, services, callbacks, errors and tensors over TCP+TLS, the node's Landlock, conflicting numpy
// versions side by side on one node, stop() leaving no job, and the node's loss ending in-flight calls in under 5 s.

import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { ExtensionCrashedError, RemoteError } from "../src/index.js";
import { RayJobsClient } from "../src/ray/jobs-client.js";
import { Tensor } from "../src/tensor/tensor.js";
import { fixture, makeManager } from "./helpers.js";
import { startRayCluster, type RayTestCluster } from "./ray-helpers.js";

const started = await startRayCluster();
const skip = typeof started === "string" ? started : false;
// A share of node_b, not all of it: the entrypoint holds its resources while the job runs, and two run side by side.
const ON_NODE_B = { ray: { resources: { node_b: 0.1 } } };

describe("extensions placed on a two-node Ray cluster", { skip }, () => {
  const cluster = started as RayTestCluster;
  const client = new RayJobsClient(cluster.address);
  const manager = makeManager({ cluster: { ray: { address: cluster.address, pollMs: 200 } } });
  manager.provide("Counter", { add: (n: number) => n + 1 });
  after(async () => {
    await manager.close();
    await cluster.stop();
  });
  const running = async () =>
    (await client.jobs()).filter((j) => j.status === "RUNNING" || j.status === "PENDING").map((j) => j.submissionId);

  it("runs on the node that has the requested resource, confined by Landlock there, with the same calls as a local one", async () => {
    const ext = await manager.load({ name: "ray_probe", modulePath: fixture("ray_probe"), placement: ON_NODE_B });
    const nodeB = (await client.nodes()).find((n) => n.resources.node_b === 1)!;
    assert.equal(ext.placement?.backend, "ray");
    assert.equal(ext.placement?.nodeId, nodeB.nodeId);
    assert.equal(ext.placement?.nodeAddress, nodeB.nodeIp);
    assert.deepEqual(ext.placement?.sandbox, {
      backend: "landlock",
      abi: (ext.placement?.sandbox as { abi: number }).abi,
    });
    assert.ok(typeof ext.pid === "number" && ext.pid > 1);
    assert.deepEqual(await ext.call("echo", [{ a: [1, 2.5, "x", null] }]), { a: [1, 2.5, "x", null] });
    assert.deepEqual(
      Buffer.from((await ext.call("echo", [Buffer.from([0, 1, 255])])) as Uint8Array),
      Buffer.from([0, 1, 255]),
    );
    assert.equal(await ext.call("count", [41]), 42);
    assert.equal(await ext.call("call_back", [(v: number) => v * 3, 5]), 15);
    await assert.rejects(
      ext.call("fail", ["no good"]),
      (error: Error) =>
        error instanceof RemoteError && error.remoteType === "ValueError" && /no good/.test(error.message),
    );
    // The node's Landlock: a host file outside its rules is refused, and no new connection can be made.
    assert.match(String(await ext.call("read_file", ["/etc/hostname"])), /PermissionError/);
    assert.match(String(await ext.call("dial", ["127.0.0.1", 22])), /PermissionError/);
    const jobId = ext.placement?.jobId as string;
    await ext.stop();
    // Nothing of it runs on: its job ends (Ray may take a moment to say so) and no job is running.
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && (await client.job(jobId)).status === "RUNNING")
      await new Promise((resolve) => setTimeout(resolve, 250));
    assert.ok(["STOPPED", "SUCCEEDED"].includes((await client.job(jobId)).status));
    assert.deepEqual(await running(), []);
  });

  it("runs two extensions with conflicting numpy versions side by side on one node, tensors crossing by value", async () => {
    // One after the other: each makes its venv on the node (a clone of Ray's, then pip), which is slow on two cores.
    const older = await manager.load({ name: "ray_np_old", modulePath: fixture("ray_np_old"), placement: ON_NODE_B });
    const newer = await manager.load({ name: "ray_np_new", modulePath: fixture("ray_np_new"), placement: ON_NODE_B });
    assert.equal(older.placement?.nodeId, newer.placement?.nodeId);
    assert.equal(await older.call("version"), "1.26.4");
    assert.equal(await newer.call("version"), "2.2.6");
    const doubled = (await newer.call("double", [Tensor.from(new Float64Array([1, 2, 3, 4]), [2, 2])])) as Tensor;
    assert.deepEqual(doubled.shape, [2, 2]);
    assert.deepEqual([...doubled.toArray()], [2, 4, 6, 8]);
    await Promise.all([older.stop(), newer.stop()]);
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && (await running()).length) await new Promise((resolve) => setTimeout(resolve, 250));
    assert.deepEqual(await running(), []);
  });

  // Last: node_b is gone afterwards.
  it("rejects a call in flight with ExtensionCrashedError, with the Ray job status, within 5 s of losing the node", async (t) => {
    const ext = await manager.load({ name: "ray_probe_lost", modulePath: fixture("ray_probe"), placement: ON_NODE_B });
    const jobId = ext.placement?.jobId as string;
    const call = ext.call("sleep", [120]);
    call.catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const killedAt = Date.now();
    cluster.killNodeB();
    await assert.rejects(call, (error: Error) => {
      assert.ok(error instanceof ExtensionCrashedError, String(error));
      assert.match(error.message, /Ray job raysubmit_\w+ (RUNNING|STOPPED|FAILED)/);
      assert.ok(error.rayJobStatus);
      return true;
    });
    const elapsed = Date.now() - killedAt;
    assert.ok(elapsed < 5000, `rejected after ${elapsed} ms`);
    t.diagnostic(`the call was rejected ${elapsed} ms after node_b's raylet was killed`);
    assert.equal(manager.get("ray_probe_lost"), undefined);
    // And no job is left behind: Ray ends the lost node's job (it notices the node's death in its own time).
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline && !["STOPPED", "FAILED", "SUCCEEDED"].includes((await client.job(jobId)).status)) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    assert.ok(["STOPPED", "FAILED"].includes((await client.job(jobId)).status));
    assert.deepEqual(await running(), []);
  });
});
