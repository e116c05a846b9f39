// The Ray side on a real two-node cluster, below the transport: the package upload, a guest's job placed by resource,
// its report (node, pid, confinement), a job's end with Ray's status, and stop() leaving no job running.

import assert from "node:assert/strict";
import { createServer, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { guestJobSubmission, moduleDirInPackage } from "../src/ray/job-spec.js";
import { RayJobsClient } from "../src/ray/jobs-client.js";
import { buildPackage } from "../src/ray/package-zip.js";
import { startRayGuestJob } from "../src/ray/ray-job.js";
import { RUNTIME_ROOT } from "../src/runtime-paths.js";
import { fixture } from "./helpers.js";
import { startRayCluster, type RayTestCluster } from "./ray-helpers.js";
import { join } from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { RayDoctorReport } from "../src/doctor/ray.js";
import { TEST_DIR } from "./helpers.js";

const run = promisify(execFile);
const CLI = join(TEST_DIR, "..", "src", "cli.ts");

const started = await startRayCluster();
const skip = typeof started === "string" ? started : false;

describe("Ray jobs on a two-node cluster", { skip }, () => {
  const cluster = started as RayTestCluster;
  const client = new RayJobsClient(cluster.address);
  let packageUri = "";
  // A listener that takes the guest's TCP connection and never answers TLS: the guest waits, its job stays RUNNING.
  const held: Socket[] = [];
  const silent = createServer((socket) => held.push(socket));

  before(async () => {
    const pkg = await buildPackage([
      { dir: join(RUNTIME_ROOT, "pyisolate"), prefix: "pyisolate" },
      { dir: fixture("ray_probe"), prefix: moduleDirInPackage("ray_probe") },
    ]);
    packageUri = pkg.uri;
    await client.uploadPackage(pkg.uri, pkg.zip);
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  });
  after(async () => {
    for (const socket of held) socket.destroy();
    silent.close();
    await cluster.stop();
  });

  const submission = (env: Record<string, string>, sandboxMode: "required" | "preferred" | "disabled" = "required") =>
    guestJobSubmission({
      name: "echo",
      packageUri,
      moduleName: "ray_probe",
      dependencies: [],
      placement: { resources: { node_b: 1 } },
      env,
      sandboxMode,
      pipInstallOptions: undefined,
    });

  it("knows the cluster: Ray's version and both nodes with their resources", async () => {
    assert.equal(await client.version(), "2.60.0");
    const nodes = await client.nodes();
    assert.equal(nodes.filter((n) => n.state === "ALIVE").length, 2);
    assert.equal(nodes.filter((n) => n.resources.node_b === 1).length, 1);
  });

  it("finds an uploaded package by its content's URI", async () => {
    assert.equal(await client.hasPackage(packageUri), true);
    assert.equal(await client.hasPackage("gcs://_ray_pkg_00000000000000000000000000000000.zip"), false);
  });

  it("runs the guest on the node that has the requested resource, confined by Landlock, and reports its pid", async () => {
    const port = (silent.address() as { port: number }).port;
    const env = {
      PYISOLATE_CONNECT: `127.0.0.1:${port}`,
      PYISOLATE_PEER_SHA256: "00".repeat(32),
      PYISOLATE_TOKEN: "11".repeat(32),
    };
    const job = await startRayGuestJob(client, submission(env), {
      name: "echo",
      pollMs: 250,
      signal: new AbortController().signal,
    });
    try {
      const nodeB = (await client.nodes()).find((n) => n.resources.node_b === 1)!;
      assert.equal(job.placement.nodeId, nodeB.nodeId);
      assert.equal(job.placement.nodeAddress, nodeB.nodeIp);
      assert.ok(job.pid > 1);
      assert.equal(job.report.sandbox.backend, "landlock");
      assert.ok(job.report.sandbox.backend === "landlock" && job.report.sandbox.abi >= 1);
      assert.equal((await client.job(job.placement.jobId)).status, "RUNNING");
    } finally {
      job.kill();
    }
    // Reported within its bound (0.3 s after the stop), with the status Ray had then: STOPPED, or still RUNNING.
    const exit = await job.exited;
    assert.match(exit.rayJobStatus ?? "", /^(STOPPED|RUNNING)$/);
    assert.match(exit.stderrTail.at(-1)!, /^Ray job raysubmit_\w+ (STOPPED|RUNNING)/);
    // Nothing of it runs on: the cluster lists the job as ended.
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && (await client.job(job.placement.jobId)).status === "RUNNING")
      await new Promise((resolve) => setTimeout(resolve, 250));
    assert.equal((await client.job(job.placement.jobId)).status, "STOPPED");
    const running = (await client.jobs()).filter((j) => j.status === "RUNNING" || j.status === "PENDING");
    assert.deepEqual(
      running.map((j) => j.submissionId),
      [],
    );
  });

  it("ends a job whose guest cannot start with Ray's FAILED status and the guest's own last words", async () => {
    // No dial variables: the bootstrap finds no host socket and exits 2.
    const job = await startRayGuestJob(client, submission({}, "preferred"), {
      name: "echo",
      pollMs: 250,
      signal: new AbortController().signal,
    });
    const exit = await job.exited;
    assert.equal(exit.rayJobStatus, "FAILED");
    assert.equal(exit.exitCode, 2);
    assert.ok(
      exit.stderrTail.some((line) => /not the host's socket/.test(line)),
      exit.stderrTail.join("\n"),
    );
  });

  it("pyisolate doctor --ray reports Ray's version, both nodes with their resources, and Landlock for a guest on each", async () => {
    const { stdout } = await run(
      process.execPath,
      ["--import", "tsx", CLI, "doctor", "--ray", cluster.address, "--json"],
      { encoding: "utf8", timeout: 240_000 },
    );
    const report = JSON.parse(stdout) as RayDoctorReport;
    assert.equal(report.reachable, true);
    assert.equal(report.version, "2.60.0");
    assert.equal(report.nodes.length, 2);
    assert.equal(report.nodes.filter((n) => n.resources.node_b === 1).length, 1);
    for (const node of report.nodes) {
      assert.equal(node.confinement?.backend, "landlock", JSON.stringify(node));
    }
    const text = await run(process.execPath, ["--import", "tsx", CLI, "doctor", "--ray", cluster.address], {
      encoding: "utf8",
      timeout: 240_000,
    });
    assert.match(text.stdout, /reachable, Ray 2\.60\.0, 2 node\(s\)/);
    assert.match(text.stdout, /node_b 1/);
  });

  it("pyisolate doctor --ray says an unreachable cluster is unreachable, and exits 1", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as { port: number }).port;
    await new Promise((resolve) => closed.close(resolve));
    await assert.rejects(
      run(process.execPath, ["--import", "tsx", CLI, "doctor", "--ray", `http://127.0.0.1:${port}`], {
        encoding: "utf8",
      }),
      (error: { code: number; stdout: string }) => {
        assert.equal(error.code, 1);
        assert.match(error.stdout, /unreachable: .*ECONNREFUSED/);
        return true;
      },
    );
  });

  it("refuses a placement that no node of the cluster offers before it submits a job", async () => {
    const before = (await client.jobs()).length;
    await assert.rejects(
      startRayGuestJob(
        client,
        guestJobSubmission({
          name: "ray_probe",
          packageUri,
          moduleName: "ray_probe",
          dependencies: [],
          placement: { numGpus: 1, resources: { node_b: 1 } },
          env: {},
          sandboxMode: "required",
          pipInstallOptions: undefined,
        }),
        { name: "ray_probe", pollMs: 250, signal: new AbortController().signal },
      ),
      (error: Error) => {
        assert.equal(error.name, "RayClusterError");
        assert.match(error.message, /cannot be placed: no alive node .* offers \{"node_b":1,"GPU":1\}/);
        return true;
      },
    );
    assert.equal((await client.jobs()).length, before);
  });
});
