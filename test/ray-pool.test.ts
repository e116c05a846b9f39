// manager.pool({ workers, placement: { ray } }) on a real two-node Ray cluster: one job per worker on the node that
// has the resource, calls spread over them, and a worker's crash confined to its own calls, as in a local pool.

import assert from "node:assert/strict";
import { once } from "node:events";
import { describe, it } from "node:test";
import { ExtensionCrashedError } from "../src/index.js";
import { fixture } from "./helpers.js";
import { jobsLeftAfterWait, onRayCluster, startRayCluster } from "./ray-helpers.js";

const started = await startRayCluster();
const skip = typeof started === "string" ? started : false;

describe("a pool placed on a two-node Ray cluster", { skip }, () => {
  const { client, manager } = onRayCluster(started);

  it("runs one job per worker on the requested node, and a worker's crash rejects only its own call", async () => {
    const pool = await manager.pool({
      name: "ray_pool",
      modulePath: fixture("ray_probe"),
      workers: 2,
      placement: { ray: { resources: { node_b: 0.1 } } },
    });
    assert.equal(manager.getPool("ray_pool"), pool);
    const nodeB = (await client.nodes()).find((n) => n.resources.node_b === 1)!;
    const jobs = (await client.jobs()).filter((j) => j.status === "RUNNING");
    assert.equal(jobs.length, 2);
    assert.deepEqual(
      jobs.map((j) => j.driverNodeId),
      [nodeB.nodeId, nodeB.nodeId],
    );
    const [first, second] = pool.workers;
    assert.ok(first!.pid && second!.pid && first!.pid !== second!.pid);
    // One long call on each worker (the second goes to the less busy one).
    const calls = ["a", "b"].map((key) =>
      pool.call("sleep", [120], { sticky: key }).then(
        () => undefined,
        (error: unknown) => error,
      ),
    );
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && !pool.workers.every((w) => w.inFlight === 1))
      await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(
      pool.workers.map((w) => w.inFlight),
      [1, 1],
    );
    const crash = once(pool, "crash");
    process.kill(second!.pid!, "SIGKILL");
    const [error, worker] = (await crash) as [Error, number];
    assert.equal(worker, 1);
    assert.ok(error instanceof ExtensionCrashedError && error.worker === 1, String(error));
    assert.match(error.message, /\(worker 1\)/);
    assert.ok(error.rayJobStatus);
    assert.equal(await calls[1], error);
    // The other worker serves on, its own long call still in flight.
    assert.equal(pool.state, "ready");
    assert.equal(first!.inFlight, 1);
    assert.deepEqual(await pool.call("echo", [[1, "x"]]), [1, "x"]);
    await pool.stop();
    assert.ok((await calls[0]) instanceof Error, "the first worker's call ended with the stop");
    assert.equal(manager.getPool("ray_pool"), undefined);
    assert.deepEqual(await jobsLeftAfterWait(client), []);
  });
});
