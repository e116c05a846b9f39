// Pool scaling: a CPU-bound pure-Python method (~50 ms) called with enough calls in flight, on one plain extension
// and on pools of 1, 2 and 4 workers; prints calls/s, the ratio to the plain extension, and the load average.
//
//   node bench/pool.mjs [--rounds 5] [--calls 40] [--target-ms 50] [--dist DIR]
//   node bench/run.mjs --only pool        (the same, from the benchmark driver)

import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const HERE = dirname(fileURLToPath(import.meta.url));
const { values: cli } = parseArgs({
  options: {
    rounds: { type: "string", default: "5" },
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

/** CPU seconds (user + system) the processes have used: /proc/<pid>/stat fields 14 and 15, in 100 Hz ticks. */
function cpuSeconds(pids) {
  let ticks = 0;
  for (const pid of pids) {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / 100;
}

/**
 * Calls/s with every call issued at once (the pool keeps them spread by least-busy dispatch), and the cores the
 * extension's processes used meanwhile (their CPU seconds over the wall time): the figure other load cannot inflate.
 */
async function throughput(target, pids, iterations) {
  await Promise.all(Array.from({ length: 4 }, () => target.call("spin", [iterations]))); // warm every worker
  const cpuBefore = cpuSeconds(pids);
  const began = performance.now();
  await Promise.all(Array.from({ length: CALLS }, () => target.call("spin", [iterations])));
  const seconds = (performance.now() - began) / 1000;
  return { rate: CALLS / seconds, cores: (cpuSeconds(pids) - cpuBefore) / seconds };
}

/** The same loop as bench_pool's `spin`, `calls` times, in a bare Python process (no pyisolate at all). */
const BARE_SPIN = [
  "import sys",
  "n, calls = int(sys.argv[1]), int(sys.argv[2])",
  "for _ in range(calls):",
  "    total = 0",
  "    for i in range(n):",
  "        total += i * i % 7",
].join("\n");

/**
 * What this machine gives two CPU-bound processes at once, as a multiple of one: bare Python processes (no host, no
 * pool) running the same loop, one alone, then two together. On this VM two busy vCPUs have delivered 1.7-2.0x one,
 * varying by the minute: the ceiling of any pool here.
 */
async function machineScaling(iterations, calls = 8) {
  const run = async (processes) => {
    const began = performance.now();
    const children = Array.from({ length: processes }, () =>
      spawn("python3", ["-c", BARE_SPIN, String(iterations), String(calls)], { stdio: "ignore" }),
    );
    await Promise.all(children.map((child) => once(child, "exit")));
    return (performance.now() - began) / 1000;
  };
  const alone = await run(1);
  const together = await run(2);
  return (2 * alone) / together;
}

// Disabled: the pids are then the Python processes themselves, whose CPU time /proc reports (a sandbox adds no
// cost to a running loop; its cost is at start, measured by bench/run.mjs).
const sandbox = { mode: "disabled" };
const plain = await manager.load({ name: "bench_pool_plain", modulePath: MODULE, sandbox });
const iterations = await calibrate(plain);
const configs = [["plain", plain, () => [plain.pid]]];
// One call per worker at a time (maxInFlight: 1, what docs/pools.md advises for CPU-bound methods): each worker is
// sent its next call as it finishes one, so both stay busy to the end of the burst.
const MAX_IN_FLIGHT = 1;
for (const workers of [1, 2, 4]) {
  const pool = await manager.pool({
    name: `bench_pool_${workers}`,
    modulePath: MODULE,
    sandbox,
    workers,
    maxInFlight: MAX_IN_FLIGHT,
  });
  configs.push([`pool${workers}`, pool, () => pool.workers.map((w) => w.pid)]);
}

const load = { before: loadavg()[0] };
const rates = Object.fromEntries(configs.map(([name]) => [name, []]));
const cores = Object.fromEntries(configs.map(([name]) => [name, []]));
const machine = [];
// Interleaved rounds: a burst of load from elsewhere hits every configuration alike.
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, target, pids] of configs) {
    const measured = await throughput(target, pids(), iterations);
    rates[name].push(measured.rate);
    cores[name].push(measured.cores);
  }
  machine.push(await machineScaling(iterations));
}
load.after = loadavg()[0];
await manager.close();

const base = median(rates.plain);
// One process's rate, from every single-process sample (the plain extension and the pool of one, the same work).
// A 2-second burst here runs anywhere from 20 to 31 calls/s on one core as the VM's speed drifts, so each round's
// configurations are compared with that round's single-process samples (seconds apart), and the ratios' median
// taken: the scaling, without the drift between rounds.
const oneProcess = median([...rates.plain, ...rates.pool1]);
const oneProcessInRound = rates.plain.map((rate, round) => (rate + rates.pool1[round]) / 2);
const pairedRatio = (samples) => median(samples.map((rate, round) => rate / oneProcessInRound[round]));
const result = {
  date: new Date().toISOString(),
  cpus: cpus().length,
  loadavg: load,
  sandbox: plain.sandbox.backend,
  iterations,
  target_ms: TARGET_MS,
  calls: CALLS,
  max_in_flight: MAX_IN_FLIGHT,
  rounds: ROUNDS,
  calls_per_s: Object.fromEntries(Object.entries(rates).map(([k, v]) => [k, +median(v).toFixed(2)])),
  ratio_to_plain: Object.fromEntries(Object.entries(rates).map(([k, v]) => [k, +(median(v) / base).toFixed(2)])),
  ratio_to_one_process: Object.fromEntries(Object.entries(rates).map(([k, v]) => [k, +pairedRatio(v).toFixed(2)])),
  ratio_of_medians: Object.fromEntries(
    Object.entries(rates).map(([k, v]) => [k, +(median(v) / oneProcess).toFixed(2)]),
  ),
  calls_per_cpu_s: Object.fromEntries(
    configs.map(([name]) => [name, +(median(rates[name]) / median(cores[name])).toFixed(2)]),
  ),
  cores_used: Object.fromEntries(Object.entries(cores).map(([k, v]) => [k, +median(v).toFixed(2)])),
  /** Two bare Python processes running the same loop at once, as a multiple of one (the machine's ceiling). */
  machine_two_process_scaling: +median(machine).toFixed(2),
  raw: { rates, cores, machine },
};
console.log(
  `pool scaling, spin(${iterations}) ~${TARGET_MS} ms, ${CALLS} calls at once, median of ${ROUNDS} rounds, ${result.cpus} CPUs, sandbox ${result.sandbox}`,
);
console.log(`load average (1 min): ${load.before.toFixed(2)} before, ${load.after.toFixed(2)} after`);
console.log(
  `this machine: two bare Python processes at once ran x${result.machine_two_process_scaling.toFixed(2)} one (per round ${machine.map((m) => m.toFixed(2)).join(", ")})`,
);
for (const [name] of configs) {
  console.log(
    `  ${name.padEnd(6)} ${result.calls_per_s[name].toFixed(2).padStart(7)} calls/s  x${result.ratio_to_one_process[name].toFixed(2)}  cores used ${result.cores_used[name].toFixed(2)}  calls per CPU-second ${result.calls_per_cpu_s[name].toFixed(1)}`,
  );
}
// Issue 13: two workers at least 1.8x one. Meaningful only on an otherwise idle machine (load average under ~1).
console.log(
  `2 workers / 1: x${result.ratio_to_one_process.pool2.toFixed(2)} (target x1.8): ${result.ratio_to_one_process.pool2 >= 1.8 ? "PASS" : "FAIL"}${load.before > 1.5 ? ` (load ${load.before.toFixed(1)}: other work took cores)` : ""}`,
);
mkdirSync(join(HERE, "results"), { recursive: true });
writeFileSync(join(HERE, "results", "pool.json"), `${JSON.stringify(result, null, 2)}\n`);
