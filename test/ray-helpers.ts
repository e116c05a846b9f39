// A real two-node Ray cluster on this machine for one test file: a head node and a second node with the custom
// resource `node_b`, ports picked free, its own temp folder, and nothing left running when the file ends.

import { execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after } from "node:test";
import type { ExtensionManager } from "../src/index.js";
import { RayJobsClient } from "../src/ray/jobs-client.js";
import { makeManager } from "./helpers.js";

const run = promisify(execFile);

export const RAY_VERSION = "2.60.0";
/** The venv that holds ray: PYISOLATE_RAY_VENV (.ci/run sets it), else one the helper makes under the temp folder. */
export const RAY_VENV = process.env.PYISOLATE_RAY_VENV ?? join(tmpdir(), `pyisolate-ray-${RAY_VERSION}`);
const RAY_BIN = join(RAY_VENV, "bin", "ray");
/** The system Python (readable by every user, unlike pyenv's under /root). */
const BASE_PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
/** Small on purpose: the machine is shared; one CPU per node is enough for one guest each. */
const NODE_ARGS = [
  "--num-cpus",
  "1",
  "--object-store-memory",
  "80000000",
  "--disable-usage-stats",
  "--node-ip-address",
  "127.0.0.1",
];

/**
 * Ray's sockets live at <temp>/session_<date>_<pid>/sockets/plasma_store (about 65 characters below <temp>) and a Unix
 * socket's path has at most 107 bytes: a longer temp folder (the unprivileged run's) makes `ray start` fail.
 */
const SHORT_TEMP_CHARS = 30;

export interface RayTestCluster {
  /** The Jobs API (the dashboard): http://127.0.0.1:<port>. */
  address: string;
  /** The GCS address `ray status --address` takes. */
  gcs: string;
  /** The venv's `ray` command. */
  rayBin: string;
  /** Kills node_b's raylet (SIGKILL): the node is lost as a crashed machine would be. */
  killNodeB(): void;
  /** Starts one more node with these custom resources (as an autoscaler would add one); resolves once it is ALIVE. */
  addNode(resources: Record<string, number>): Promise<void>;
  /** `ray status` of the cluster (its text). */
  status(): Promise<string>;
  /** Stops both nodes: SIGTERM to each node's process group, SIGKILL to what is left; removes the temp folder. */
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

/** Makes the ray venv once (a lock folder keeps concurrent test files from racing); returns a skip reason or undefined. */
export async function ensureRay(): Promise<string | undefined> {
  if (existsSync(RAY_BIN)) return undefined;
  const lock = `${RAY_VENV}.lock`;
  try {
    mkdirSync(lock);
  } catch {
    for (let i = 0; i < 600 && existsSync(lock); i++) await new Promise((resolve) => setTimeout(resolve, 500));
    return existsSync(RAY_BIN)
      ? undefined
      : `ray is not installed in ${RAY_VENV} and another run's install did not finish`;
  }
  try {
    await run(BASE_PYTHON, ["-m", "venv", RAY_VENV]);
    await run(join(RAY_VENV, "bin", "pip"), ["install", "--quiet", `ray[default]==${RAY_VERSION}`], {
      timeout: 600_000,
    });
    return undefined;
  } catch (error) {
    rmSync(RAY_VENV, { recursive: true, force: true });
    return `ray[default]==${RAY_VERSION} could not be installed into ${RAY_VENV}: ${String((error as Error).message).slice(0, 300)}`;
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** Every live process in process group `pgid` (read from /proc: the group outlives `ray start`, which exits). */
function groupMembers(pgid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (fields[0] !== "Z" && Number(fields[2]) === pgid) pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // Nothing left in it.
  }
}

/**
 * Runs `ray start ...` in a process group of its own, which its daemons keep; resolves with that group's id. Tried
 * once more after its group is killed when Ray itself tripped: it gives a new node a fixed 30 s to register with the
 * GCS (ray/_private/node.py), which two busy cores can pass, and it picks some ports at random and refuses to start
 * when two of its components drew the same one ("metrics_export is trying to use a port number ... used by other
 * components", seen once in CI).
 */
async function startNode(args: string[], env: NodeJS.ProcessEnv, launcher: readonly string[] = []): Promise<number> {
  try {
    return await startNodeOnce(args, env, launcher);
  } catch (error) {
    if (!RAY_OWN_TRIPS.test((error as Error).message)) throw error;
    return await startNodeOnce(args, env, launcher);
  }
}

/** What `ray start` fails with now and then on its own: a start tried again may well succeed. */
const RAY_OWN_TRIPS = /timed out during startup|is trying to use a port number \d+ that is used by other components/;

async function startNodeOnce(args: string[], env: NodeJS.ProcessEnv, launcher: readonly string[]): Promise<number> {
  const argv = [...launcher, RAY_BIN, "start", ...args];
  const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ["ignore", "pipe", "pipe"], env });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  if (code !== 0) {
    killGroup(child.pid!, "SIGKILL");
    throw new Error(`ray start exited with ${code}: ${output.slice(-800)}`);
  }
  return child.pid!;
}

async function aliveNodes(address: string): Promise<number> {
  try {
    const response = await fetch(`${address}/api/v0/nodes`, { signal: AbortSignal.timeout(5000) });
    if (!response.ok) return 0;
    const body = (await response.json()) as { data?: { result?: { result?: { state: string }[] } } };
    return (body.data?.result?.result ?? []).filter((node) => node.state === "ALIVE").length;
  } catch {
    return 0;
  }
}

export interface ClusterOptions {
  /** A command that node_b's `ray start` runs under (e.g. [python, no_landlock.py]: a node without Landlock). */
  nodeBLauncher?: readonly string[];
}

/**
 * Starts the cluster, or returns why it cannot (ray not installable, `ray start` failing): the caller skips with it.
 * Register `stop` with `after()` at once: it is also run if the process exits first.
 */
export async function startRayCluster(options: ClusterOptions = {}): Promise<RayTestCluster | string> {
  const missing = await ensureRay();
  if (missing) return missing;
  const tempDir = await mkdtemp(join(tmpdir().length <= SHORT_TEMP_CHARS ? tmpdir() : "/tmp", "ray-"));
  const [gcsPort, dashboardPort, clientPort] = [await freePort(), await freePort(), await freePort()];
  const perNode = async () => [
    "--node-manager-port",
    String(await freePort()),
    "--object-manager-port",
    String(await freePort()),
    "--dashboard-agent-listen-port",
    String(await freePort()),
    "--dashboard-agent-grpc-port",
    String(await freePort()),
    "--metrics-export-port",
    String(await freePort()),
    "--runtime-env-agent-port",
    String(await freePort()),
  ];
  // Worker ports from a range of our own, away from the defaults another run on this machine uses.
  // Room for a third node (addNode) after the first two's hundred, and below Linux's ephemeral range (32768 and up),
  // where the free ports above come from: a worker range that held one made `ray start` refuse its ports.
  const base = 10_000 + Math.floor(Math.random() * 110) * 200;
  // The pip settings (local index, find-links) reach the runtime_env installs through the nodes' environment.
  // TMPDIR too: what Ray's processes and the guests put in the temp folder goes with the cluster's own folder.
  // PATH as an activated venv has it: a job without dependencies runs the entrypoint's `python`, Ray's own, which
  // every user can run (an unprivileged user's PATH has no other `python`).
  const env = {
    ...process.env,
    RAY_USAGE_STATS_ENABLED: "0",
    TMPDIR: tempDir,
    PATH: `${join(RAY_VENV, "bin")}:${process.env.PATH ?? "/usr/bin:/bin"}`,
  };
  const groups: number[] = [];
  const address = `http://127.0.0.1:${dashboardPort}`;
  const gcs = `127.0.0.1:${gcsPort}`;
  let stopped = false;
  const killAll = () => {
    for (const pgid of groups) killGroup(pgid, "SIGKILL");
  };
  // A test runner killed by a signal runs no "exit" handler of its own: then the nodes are killed here.
  const onSignal = (signal: NodeJS.Signals) => {
    killAll();
    process.kill(process.pid, signal);
  };
  process.once("exit", killAll);
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    for (const pgid of groups) killGroup(pgid, "SIGTERM");
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && groups.some((pgid) => groupMembers(pgid).length > 0))
      await new Promise((resolve) => setTimeout(resolve, 200));
    killAll();
    process.removeListener("exit", killAll);
    process.removeListener("SIGTERM", onSignal);
    process.removeListener("SIGINT", onSignal);
    rmSync(tempDir, { recursive: true, force: true });
  };
  try {
    groups.push(
      await startNode(
        [
          "--head",
          "--port",
          String(gcsPort),
          "--dashboard-host",
          "127.0.0.1",
          "--dashboard-port",
          String(dashboardPort),
          "--ray-client-server-port",
          String(clientPort),
          "--temp-dir",
          tempDir,
          ...(await perNode()),
          "--min-worker-port",
          String(base),
          "--max-worker-port",
          String(base + 49),
          ...NODE_ARGS,
        ],
        env,
      ),
    );
    groups.push(
      await startNode(
        [
          "--address",
          gcs,
          "--resources",
          JSON.stringify({ node_b: 1 }),
          ...(await perNode()),
          "--min-worker-port",
          String(base + 50),
          "--max-worker-port",
          String(base + 99),
          ...NODE_ARGS,
        ],
        env,
        options.nodeBLauncher,
      ),
    );
    const deadline = Date.now() + 60_000;
    while ((await aliveNodes(address)) < 2) {
      if (Date.now() > deadline) throw new Error("the two nodes did not both report ALIVE within 60 s");
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  } catch (error) {
    await stop();
    return `a two-node Ray cluster could not be started: ${(error as Error).message}`;
  }
  const nodeB = groups[1]!;
  return {
    address,
    gcs,
    rayBin: RAY_BIN,
    stop,
    async addNode(resources) {
      const alive = await aliveNodes(address);
      groups.push(
        await startNode(
          [
            "--address",
            gcs,
            "--resources",
            JSON.stringify(resources),
            ...(await perNode()),
            "--min-worker-port",
            String(base + 100),
            "--max-worker-port",
            String(base + 149),
            ...NODE_ARGS,
          ],
          env,
        ),
      );
      const deadline = Date.now() + 60_000;
      while ((await aliveNodes(address)) <= alive) {
        if (Date.now() > deadline) throw new Error("the added node did not report ALIVE within 60 s");
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    },
    killNodeB() {
      for (const pid of groupMembers(nodeB)) {
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
        if (cmdline.split("\0")[0]!.endsWith("/raylet")) process.kill(pid, "SIGKILL");
      }
    },
    async status() {
      const { stdout } = await run(RAY_BIN, ["status", "--address", gcs], { env, timeout: 60_000 });
      return stdout;
    },
  };
}

/** The submission ids of the cluster's jobs that have not ended (RUNNING or PENDING). */
export async function unendedJobs(client: RayJobsClient): Promise<string[]> {
  return (await client.jobs())
    .filter((j) => j.status === "RUNNING" || j.status === "PENDING")
    .map((j) => j.submissionId);
}

/** Waits up to 30 s for every job to end (Ray takes a moment to list a stopped one as ended); returns those left. */
export async function jobsLeftAfterWait(client: RayJobsClient): Promise<string[]> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && (await unendedJobs(client)).length)
    await new Promise((resolve) => setTimeout(resolve, 250));
  return unendedJobs(client);
}

/**
 * Inside a Ray test file's suite: a Jobs client and a manager placed on the file's cluster (`started`), closed with the
 * cluster after the suite.
 */
export function onRayCluster(started: RayTestCluster | string): { client: RayJobsClient; manager: ExtensionManager } {
  const cluster = started as RayTestCluster;
  const client = new RayJobsClient(cluster.address);
  const manager = makeManager({ cluster: { ray: { address: cluster.address, pollMs: 200 } } });
  after(async () => {
    await manager.close();
    await cluster.stop();
  });
  return { client, manager };
}
