// Small calls to an extension placed on Ray (a Ray job on the second node, over TCP+TLS) against the same extension
// on this machine over the Unix transport, in one run: sequential latency, pipelined throughput, 1 MiB round trip.
//
//   node --import tsx bench/ray.mjs [--address http://HEAD:8265] [--rounds 3] [--calls 1000] [--pipelined 2000]
//
// Without --address it starts the tests' two-node cluster on this machine (test/ray-helpers.ts; PYISOLATE_RAY_VENV)
// and places the extension on the node with the resource node_b; with --address, on any node of that cluster.

import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { compareRows, measureTransport } from "./transport-compare.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const { values: cli } = parseArgs({
  options: {
    address: { type: "string" },
    rounds: { type: "string", default: "3" },
    calls: { type: "string", default: "1000" },
    pipelined: { type: "string", default: "2000" },
  },
});
const ROUNDS = Number(cli.rounds);
const CALLS = Number(cli.calls);
const PIPELINED = Number(cli.pipelined);
const { ExtensionManager } = await import("../src/index.ts");

let cluster;
if (!cli.address) {
  const { startRayCluster } = await import("../test/ray-helpers.ts");
  cluster = await startRayCluster();
  if (typeof cluster === "string") {
    console.error(`bench/ray: ${cluster}`);
    process.exit(1);
  }
}
const address = cli.address ?? cluster.address;
const WORK = join(HERE, ".work");
mkdirSync(WORK, { recursive: true });
const manager = new ExtensionManager({
  venvRoot: join(WORK, "ours-venvs"),
  forwardOutput: false,
  cluster: { ray: { address } },
});
const measure = (ext) => measureTransport(ext, { calls: CALLS, pipelined: PIPELINED, warmup: 200, mibRounds: 10 });

const modulePath = join(HERE, "extensions", "bench_ext");
const extensionClass = "bench_ext:BenchExtension";
try {
  const exts = {
    local: await manager.load({
      name: "bench_ray_local",
      modulePath,
      extensionClass,
      sandbox: { mode: "required", backend: "landlock" },
    }),
    ray: await manager.load({
      name: "bench_ray_remote",
      modulePath,
      extensionClass,
      placement: { ray: cluster ? { resources: { node_b: 1 } } : {} },
    }),
  };
  const results = { local: [], ray: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const where of ["local", "ray"]) results[where].push(await measure(exts[where]));
  }
  const rows = compareRows(results, "local", "ray");
  console.table(rows);
  console.log(
    JSON.stringify({ rounds: ROUNDS, calls: CALLS, pipelined: PIPELINED, placement: exts.ray.placement, rows }),
  );
} finally {
  await manager.close();
  await cluster?.stop();
}
