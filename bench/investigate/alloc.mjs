// Bytes the Node host allocates on V8's heap per small host -> extension call (ping(1)), measured as the
// growth of new space over a batch of calls that no scavenge interrupted (batches with a GC are retried).
// Each scavenge of the bench's run is ~0.4-1.4 ms here, so bytes/call sets how often one lands in a call.
//
//   node bench/investigate/alloc.mjs [--dist DIR] [--batch 200] [--tries 20]

import { dirname, join } from "node:path";
import { PerformanceObserver } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import v8 from "node:v8";

const HERE = dirname(fileURLToPath(import.meta.url));
const { values: cli } = parseArgs({
  options: {
    dist: { type: "string", default: join(HERE, "..", "..", "dist") },
    batch: { type: "string", default: "200" },
    tries: { type: "string", default: "20" },
  },
});
const BATCH = Number(cli.batch);
let gcs = 0;
new PerformanceObserver((list) => (gcs += list.getEntries().length)).observe({ entryTypes: ["gc"] });
const newSpaceUsed = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space").space_used_size;
const flush = () => new Promise((r) => setImmediate(r));

async function perCall(label, body) {
  const results = [];
  for (let t = 0; t < Number(cli.tries); t++) {
    await flush();
    const g0 = gcs;
    const u0 = newSpaceUsed();
    for (let i = 0; i < BATCH; i++) await body();
    const u1 = newSpaceUsed();
    await flush();
    if (gcs === g0 && u1 > u0) results.push((u1 - u0) / BATCH);
  }
  results.sort((a, b) => a - b);
  console.log(
    `${label}: ${results.length ? `${results[Math.floor(results.length / 2)].toFixed(0)} bytes/call (median of ${results.length} GC-free batches of ${BATCH})` : "no GC-free batch"}`,
  );
}

const api = await import(pathToFileURL(join(cli.dist, "index.js")).href);
const manager = new api.ExtensionManager({ venvRoot: join(HERE, "..", ".work", "ours-venvs") });
try {
  const ext = await manager.load({
    name: "bench_ext",
    modulePath: join(HERE, "..", "extensions", "bench_ext"),
    dependencies: [],
    sandbox: { mode: "disabled" },
  });
  for (let i = 0; i < 3000; i++) await ext.call("ping", [1]); // past most of the JIT warm-up
  await perCall("empty loop (await of a resolved promise + 2 hrtime)", async () => {
    const s = process.hrtime.bigint();
    await Promise.resolve(1);
    return process.hrtime.bigint() - s;
  });
  await perCall("ext.call('ping', [1]) + 2 hrtime (the bench's loop body)", async () => {
    const s = process.hrtime.bigint();
    await ext.call("ping", [1]);
    return process.hrtime.bigint() - s;
  });
  console.log(
    `semi-space now: ${JSON.stringify(v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space"))}`,
  );
} finally {
  await manager.close();
}
