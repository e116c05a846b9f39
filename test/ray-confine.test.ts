// A Ray node that cannot confine a guest: node_b runs under a seccomp filter on which every landlock_* system call
// fails with ENOSYS (fixtures/ray_node/no_landlock.py), as on a kernel without Landlock. A "required" load placed
// there fails with SandboxUnavailableError naming the node and the reason; a "preferred" one runs, unconfined, and
// the host warns that it is.

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { SandboxUnavailableError } from "../src/index.js";
import { RayJobsClient } from "../src/ray/jobs-client.js";
import { fixture, makeManager, TEST_DIR } from "./helpers.js";
import { jobsLeftAfterWait, startRayCluster, type RayTestCluster } from "./ray-helpers.js";

const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
const started = await startRayCluster({
  nodeBLauncher: [PYTHON, join(TEST_DIR, "fixtures", "ray_node", "no_landlock.py")],
});
const skip = typeof started === "string" ? started : false;
const ON_NODE_B = { ray: { resources: { node_b: 0.1 } } };

describe("a Ray node without Landlock", { skip }, () => {
  const cluster = started as RayTestCluster;
  const client = new RayJobsClient(cluster.address);
  const warnings: string[] = [];
  const logger = { debug() {}, info() {}, warn: (message: string) => void warnings.push(message), error() {} };
  const manager = makeManager({ cluster: { ray: { address: cluster.address, pollMs: 200 } }, logger });
  after(async () => {
    await manager.close();
    await cluster.stop();
  });

  it('fails a "required" load placed there with SandboxUnavailableError naming the node and the reason', async () => {
    const nodeB = (await client.nodes()).find((n) => n.resources.node_b === 1)!;
    await assert.rejects(
      manager.load({
        name: "ray_required",
        modulePath: fixture("ray_probe"),
        placement: ON_NODE_B,
        sandbox: { mode: "required" },
      }),
      (error: Error) => {
        assert.ok(error instanceof SandboxUnavailableError, String(error));
        assert.ok(
          error.message.includes(`the Ray node ${nodeB.nodeId} (${nodeB.nodeIp}) cannot confine`),
          error.message,
        );
        assert.match(error.message, /Landlock is not supported/);
        assert.equal(error.model, "ray-node");
        return true;
      },
    );
    assert.equal(manager.get("ray_required"), undefined);
    assert.deepEqual(await jobsLeftAfterWait(client), []);
  });

  it('runs a "preferred" load there unconfined, says so in its placement, and warns', async () => {
    const ext = await manager.load({
      name: "ray_preferred",
      modulePath: fixture("ray_probe"),
      placement: ON_NODE_B,
      sandbox: { mode: "preferred" },
    });
    const nodeB = (await client.nodes()).find((n) => n.resources.node_b === 1)!;
    assert.equal(ext.placement?.nodeId, nodeB.nodeId);
    assert.equal((ext.placement?.sandbox as { backend: string }).backend, "none");
    assert.match((ext.placement?.sandbox as { reason: string }).reason, /Landlock is not supported/);
    const warning = warnings.find((w) => w.includes("[ray_preferred] runs unconfined"));
    assert.ok(warning, warnings.join("\n"));
    assert.ok(warning.includes(nodeB.nodeId));
    // Unconfined indeed: a host file that Landlock would refuse is read.
    assert.doesNotMatch(String(await ext.call("read_file", ["/etc/hostname"])), /PermissionError/);
    await ext.stop();
    assert.deepEqual(await jobsLeftAfterWait(client), []);
  });
});
