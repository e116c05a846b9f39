// The TCP+TLS transport against the Unix one, in one run on one machine: small-call latency (sequential ping) and
// pipelined throughput (calls issued at once), and a 1 MiB bytes round trip, for each transport, interleaved.
//
//   node bench/tcp.mjs [--rounds 3] [--calls 2000] [--pipelined 5000] [--dist DIR]

import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { compareRows, measureTransport } from "./transport-compare.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const { values: cli } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    calls: { type: "string", default: "2000" },
    pipelined: { type: "string", default: "5000" },
    dist: { type: "string", default: join(HERE, "..", "dist") },
  },
});
const ROUNDS = Number(cli.rounds);
const CALLS = Number(cli.calls);
const PIPELINED = Number(cli.pipelined);
const { ExtensionManager } = await import(pathToFileURL(join(resolve(cli.dist), "index.js")).href);

const WORK = join(HERE, ".work");
mkdirSync(WORK, { recursive: true });
const manager = new ExtensionManager({ venvRoot: join(WORK, "ours-venvs"), forwardOutput: false });
const measure = (ext) => measureTransport(ext, { calls: CALLS, pipelined: PIPELINED, warmup: 500, mibRounds: 20 });

const exts = {};
for (const transport of ["unix", "tcp"]) {
  exts[transport] = await manager.load({
    name: `bench_tcp_${transport}`,
    modulePath: join(HERE, "extensions", "bench_ext"),
    extensionClass: "bench_ext:BenchExtension",
    sandbox: { mode: "disabled" },
    transport,
  });
}
const results = { unix: [], tcp: [] };
for (let round = 0; round < ROUNDS; round++) {
  for (const transport of ["unix", "tcp"]) results[transport].push(await measure(exts[transport]));
}
await manager.close();

const rows = compareRows(results, "unix", "tcp");
console.table(rows);
console.log(JSON.stringify({ rounds: ROUNDS, calls: CALLS, pipelined: PIPELINED, rows }));
