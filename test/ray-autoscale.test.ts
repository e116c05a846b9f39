// A job that no alive node can place: refused up front on a fixed cluster (what the cluster's own autoscaler report
// says of a cluster started by hand), submitted to wait for a node where an autoscaler may add one. The added node is
// started by the test, as an autoscaler would.

import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { RayClusterError } from "../src/index.js";
import { autoscalerFromStatus, waitsForNodes } from "../src/ray/autoscaler.js";
import { RayJobsClient } from "../src/ray/jobs-client.js";
import { fixture, makeManager } from "./helpers.js";
import { jobsLeftAfterWait, startRayCluster, type RayTestCluster } from "./ray-helpers.js";

const ON_NODE_C = { ray: { resources: { node_c: 1 } } };

describe("reading the autoscaler's report", () => {
  const report = (autoscalerReport: unknown) => ({ data: { clusterStatus: { autoscalerReport } } });

  it("takes node types named after the config's groups, or nodes being launched, for an autoscaler", () => {
    assert.equal(autoscalerFromStatus(report({ nodeTypeMapping: { a1: "headgroup", b2: "gpu-workers" } })), true);
    assert.equal(
      autoscalerFromStatus(report({ nodeTypeMapping: { a1: "node_a1" }, pendingLaunches: { gpu: 1 } })),
      true,
    );
    assert.equal(
      autoscalerFromStatus(report({ nodeTypeMapping: { a1: "node_a1" }, pendingNodes: [["ip", "gpu"]] })),
      true,
    );
  });

  it("takes the readonly provider's node_<id> types for a fixed cluster, and no report for no answer", () => {
    assert.equal(autoscalerFromStatus(report({ nodeTypeMapping: { a1: "node_a1", b2: "node_b2" } })), false);
    assert.equal(autoscalerFromStatus({ data: { clusterStatus: null, autoscalingStatus: null } }), undefined);
    assert.equal(autoscalerFromStatus("not json"), undefined);
    assert.equal(autoscalerFromStatus(report({ nodeTypeMapping: {} })), undefined);
  });

  it("lets the application's option decide first, then the report, and waits when neither says", () => {
    assert.equal(waitsForNodes(false, true), false);
    assert.equal(waitsForNodes(true, false), true);
    assert.equal(waitsForNodes(undefined, false), false);
    assert.equal(waitsForNodes(undefined, undefined), true);
  });
});

const started = await startRayCluster();
const skip = typeof started === "string" ? started : false;

describe("an unplaceable job on a two-node Ray cluster", { skip }, () => {
  const cluster = started as RayTestCluster;
  const client = new RayJobsClient(cluster.address);
  after(async () => {
    await cluster.stop();
  });

  it("is refused up front on this cluster, started by hand, whose report shows no autoscaler", async () => {
    // Ray publishes the autoscaler's report a few seconds after the head starts; until then it says nothing (and the
    // manager would wait rather than refuse): wait for the report first, bounded.
    let status = await client.clusterStatus();
    for (let i = 0; i < 120 && autoscalerFromStatus(status) === undefined; i++) {
      await sleep(250);
      status = await client.clusterStatus();
    }
    assert.equal(autoscalerFromStatus(status), false);
    const manager = makeManager({ cluster: { ray: { address: cluster.address, pollMs: 200 } } });
    try {
      const before = (await client.jobs()).length;
      await assert.rejects(
        manager.load({ name: "ray_nowhere", modulePath: fixture("ray_probe"), placement: ON_NODE_C }),
        (error: Error) => {
          // As any failed start: an ExtensionLoadError, the cluster's refusal its cause.
          assert.equal(error.name, "ExtensionLoadError");
          assert.ok(error.cause instanceof RayClusterError, String(error.cause));
          assert.match(error.message, /offers \{"node_c":1\}, and no autoscaler serves it/);
          return true;
        },
      );
      assert.equal((await client.jobs()).length, before, "no job was submitted");
    } finally {
      await manager.close();
    }
  });

  it("is submitted with autoscaling: true, waits PENDING, and runs on the node added meanwhile", async () => {
    const manager = makeManager({ cluster: { ray: { address: cluster.address, pollMs: 200, autoscaling: true } } });
    try {
      const loading = manager.load({ name: "ray_later", modulePath: fixture("ray_probe"), placement: ON_NODE_C });
      loading.catch(() => undefined);
      // Submitted, and waiting: no node offers node_c yet.
      const deadline = Date.now() + 30_000;
      let pending: string | undefined;
      while (Date.now() < deadline && !pending) {
        pending = (await client.jobs()).find((j) => j.status === "PENDING")?.submissionId;
        if (!pending) await new Promise((resolve) => setTimeout(resolve, 250));
      }
      assert.ok(pending, "the job was submitted and is PENDING");
      await cluster.addNode({ node_c: 1 });
      const ext = await loading;
      const nodeC = (await client.nodes()).find((n) => n.resources.node_c === 1)!;
      assert.equal(ext.placement?.jobId, pending);
      assert.equal(ext.placement?.nodeId, nodeC.nodeId);
      assert.deepEqual(await ext.call("echo", ["late"]), "late");
      await ext.stop();
    } finally {
      await manager.close();
    }
    assert.deepEqual(await jobsLeftAfterWait(client), []);
  });
});
