// The TCP+TLS transport against the Unix one, in one run on one machine: small-call latency (sequential ping) and
// pipelined throughput (calls issued at once), and a 1 MiB bytes round trip, for each transport, interleaved.
//
//   node bench/tcp.mjs [--rounds 3] [--calls 2000] [--pipelined 5000] [--dist DIR]

import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

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
const quantile = (xs, q) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))];

async function measure(ext) {
  for (let i = 0; i < 500; i++) await ext.call("ping", [i]);
  const samples = [];
  for (let i = 0; i < CALLS; i++) {
    const began = process.hrtime.bigint();
    await ext.call("ping", [i]);
    samples.push(Number(process.hrtime.bigint() - began) / 1000);
  }
  const began = performance.now();
  const replies = await Promise.all(Array.from({ length: PIPELINED }, (_, i) => ext.call("ping", [i])));
  const perSecond = PIPELINED / ((performance.now() - began) / 1000);
  if (replies.some((r, i) => r !== i)) throw new Error("pipelined replies out of order");
  const mib = new Uint8Array(1 << 20);
  const bytesTimes = [];
  for (let i = 0; i < 20; i++) {
    const t = performance.now();
    await ext.call("echo", [mib]);
    bytesTimes.push(performance.now() - t);
  }
  return {
    medianUs: quantile(samples, 0.5),
    p99Us: quantile(samples, 0.99),
    perSecond,
    mibRoundTripMs: quantile(bytesTimes, 0.5),
  };
}

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

const med = (rows, key) =>
  quantile(
    rows.map((r) => r[key]),
    0.5,
  );
const rows = ["medianUs", "p99Us", "perSecond", "mibRoundTripMs"].map((key) => {
  const unix = med(results.unix, key);
  const tcp = med(results.tcp, key);
  return {
    metric: key,
    unix: Number(unix.toFixed(1)),
    tcp: Number(tcp.toFixed(1)),
    "tcp/unix": Number((tcp / unix).toFixed(2)),
  };
});
console.table(rows);
console.log(JSON.stringify({ rounds: ROUNDS, calls: CALLS, pipelined: PIPELINED, rows }));
