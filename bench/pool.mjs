// Pool scaling: a CPU-bound pure-Python method (~50 ms) called with enough calls in flight, on one plain extension
// and on pools of 1, 2 and 4 workers; prints calls/s, the ratio to the plain extension, and the load average.
//
//   node bench/pool.mjs [--rounds 3] [--calls 40] [--target-ms 50] [--dist DIR]
//   node bench/run.mjs --only pool        (the same, from the benchmark driver)

import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const HERE = dirname(fileURLToPath(import.meta.url));
const { values: cli } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    calls: { type: "string", default: "40" },
    "target-ms": { type: "string", default: "50" },
    dist: { type: "string", default: join(HERE, "..", "dist") },
  },
});
const ROUNDS = Number(cli.rounds);
const CALLS = Number(cli.calls);
const TARGET_MS = Number(cli["target-ms"]);
const { ExtensionManager } = await import(pathToFileURL(join(resolve(cli.dist), "index.js")).href);

const MODULE = join(HERE, "extensions", "bench_pool");
const WORK = join(HERE, ".work");
mkdirSync(WORK, { recursive: true });
const manager = new ExtensionManager({ venvRoot: join(WORK, "ours-venvs"), forwardOutput: false });
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Iterations of `spin` that take about TARGET_MS on one idle worker (median of 7 after 3 warm-up calls). */
async function calibrate(ext) {
  let iterations = 200_000;
  for (let i = 0; i < 3; i++) await ext.call("spin", [iterations]);
  const times = [];
  for (let i = 0; i < 7; i++) {
    const began = performance.now();
    await ext.call("spin", [iterations]);
    times.push(performance.now() - began);
  }
  return Math.round((iterations * TARGET_MS) / median(times));
}

/** Calls/s with every call issued at once (the pool keeps them spread by least-busy dispatch). */
async function throughput(target, iterations) {
  await Promise.all(Array.from({ length: 4 }, () => target.call("spin", [iterations]))); // warm every worker
  const began = performance.now();
  await Promise.all(Array.from({ length: CALLS }, () => target.call("spin", [iterations])));
  return (CALLS * 1000) / (performance.now() - began);
}

const sandbox = { mode: "preferred" };
const plain = await manager.load({ name: "bench_pool_plain", modulePath: MODULE, sandbox });
const iterations = await calibrate(plain);
const configs = [["plain", plain]];
for (const workers of [1, 2, 4]) configs.push([`pool${workers}`, await manager.pool({ name: `bench_pool_${workers}`, modulePath: MODULE, sandbox, workers })]);

const load = { before: loadavg()[0] };
const rates = Object.fromEntries(configs.map(([name]) => [name, []]));
// Interleaved rounds: a burst of load from elsewhere hits every configuration alike.
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, target] of configs) rates[name].push(await throughput(target, iterations));
}
load.after = loadavg()[0];
await manager.close();

const base = median(rates.plain);
const result = {
  date: new Date().toISOString(), cpus: cpus().length, loadavg: load, sandbox: plain.sandbox.backend,
  iterations, target_ms: TARGET_MS, calls: CALLS, rounds: ROUNDS,
  calls_per_s: Object.fromEntries(Object.entries(rates).map(([k, v]) => [k, +median(v).toFixed(2)])),
  ratio_to_plain: Object.fromEntries(Object.entries(rates).map(([k, v]) => [k, +(median(v) / base).toFixed(2)])),
  raw: rates,
};
console.log(`pool scaling, spin(${iterations}) ~${TARGET_MS} ms, ${CALLS} calls at once, median of ${ROUNDS} rounds, ${result.cpus} CPUs, sandbox ${result.sandbox}`);
console.log(`load average (1 min): ${load.before.toFixed(2)} before, ${load.after.toFixed(2)} after`);
for (const [name] of configs) console.log(`  ${name.padEnd(6)} ${result.calls_per_s[name].toFixed(2).padStart(7)} calls/s  x${result.ratio_to_plain[name].toFixed(2)}`);
mkdirSync(join(HERE, "results"), { recursive: true });
writeFileSync(join(HERE, "results", "pool.json"), `${JSON.stringify(result, null, 2)}\n`);
