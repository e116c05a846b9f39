// Stream throughput: small items from a Python generator (for several windows), from the host into Python, and
// 1 MiB shared-memory arrays; beside each, the same items fetched with one call each (what streams replace).
// pyisolate has no streaming, so there is no side-by-side ratio.
//
//   node bench/stream.mjs [--rounds 3] [--items 100000] [--arrays 2000] [--dist DIR]
//   node bench/run.mjs --only stream        (the same, from the benchmark driver)

import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const HERE = dirname(fileURLToPath(import.meta.url));
const { values: cli } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    items: { type: "string", default: "100000" },
    arrays: { type: "string", default: "2000" },
    dist: { type: "string", default: join(HERE, "..", "dist") },
  },
});
const ROUNDS = Number(cli.rounds);
const ITEMS = Number(cli.items);
const ARRAYS = Number(cli.arrays);
const FLOATS = 256 * 1024; // 1 MiB of float32
const { ExtensionManager } = await import(pathToFileURL(join(resolve(cli.dist), "index.js")).href);

const WORK = join(HERE, ".work");
mkdirSync(WORK, { recursive: true });
const manager = new ExtensionManager({ venvRoot: join(WORK, "ours-venvs"), forwardOutput: false });
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ext = await manager.load({
  name: "bench_stream",
  modulePath: join(HERE, "extensions", "bench_stream"),
  dependencies: ["numpy==2.2.6"],
  sandbox: { mode: "disabled" },
});

/** Items per second of `run`, which returns how many items it moved. */
async function rate(run) {
  const began = performance.now();
  const count = await run();
  return count / ((performance.now() - began) / 1000);
}

async function drain(iterable) {
  let count = 0;
  for await (const _item of iterable) count += 1;
  return count;
}

async function* hostInts(n) {
  for (let i = 0; i < n; i++) yield i;
}

const scenarios = {
  stream_window_16: () => drain(ext.stream("ints", [ITEMS])),
  stream_window_256: () => drain(ext.stream("ints", [ITEMS], { window: 256 })),
  stream_window_1: () => drain(ext.stream("ints", [ITEMS / 10], { window: 1 })),
  call_per_item: async () => {
    for (let i = 0; i < ITEMS / 10; i++) await ext.call("one", [i]);
    return ITEMS / 10;
  },
  host_to_python: async () => {
    await ext.call("total", [hostInts(ITEMS)]);
    return ITEMS;
  },
  arrays_1mib: async () => {
    let count = 0;
    for await (const tensor of ext.stream("arrays", [ARRAYS, FLOATS])) {
      count += 1;
      tensor.release();
    }
    return count;
  },
};

const load = { before: loadavg()[0] };
for (const run of Object.values(scenarios)) await run(); // warm-up: imports, segments, JIT
const rates = Object.fromEntries(Object.keys(scenarios).map((name) => [name, []]));
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, run] of Object.entries(scenarios)) rates[name].push(await rate(run));
}
load.after = loadavg()[0];
await manager.close();

const items_per_s = Object.fromEntries(Object.entries(rates).map(([k, v]) => [k, Math.round(median(v))]));
const result = {
  date: new Date().toISOString(),
  cpus: cpus().length,
  loadavg: load,
  rounds: ROUNDS,
  items: ITEMS,
  arrays: ARRAYS,
  array_bytes: FLOATS * 4,
  items_per_s,
  arrays_gib_per_s: +((items_per_s.arrays_1mib * FLOATS * 4) / 2 ** 30).toFixed(2),
  raw: rates,
};
console.log(
  `stream throughput, median of ${ROUNDS} rounds, ${result.cpus} CPUs, load ${load.before.toFixed(2)} before, ${load.after.toFixed(2)} after`,
);
for (const [name, value] of Object.entries(items_per_s))
  console.log(`  ${name.padEnd(18)} ${String(value).padStart(9)} items/s`);
console.log(
  `  1 MiB arrays: ${result.arrays_gib_per_s} GiB/s (shared memory, no copy); stream (window 16) vs one call per item: x${(items_per_s.stream_window_16 / items_per_s.call_per_item).toFixed(1)}`,
);
mkdirSync(join(HERE, "results"), { recursive: true });
writeFileSync(join(HERE, "results", "stream.json"), `${JSON.stringify(result, null, 2)}\n`);
