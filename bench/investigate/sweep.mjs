// Runs bench/investigate/latency.mjs under several configurations (Node flags, env, pinning, harness
// options), interleaved round by round so that drift on this shared 2-vCPU machine hits all alike, and
// prints per configuration the median over rounds of block 0's p50/p90/p99/p99.9/max (block 0 = the bench's
// conditions: a fresh process, 200 warm-up calls, 2000 timed calls), plus later blocks when --blocks > 1.
//
//   node bench/investigate/sweep.mjs [--rounds 5] [--set NAME] [--dist DIR] [--blocks 1] [--ext probe|bench]
//
// Configurations are in CONFIGS below, grouped in sets; --set picks one (default: "flags").

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const HERE = dirname(fileURLToPath(import.meta.url));
const { values: cli } = parseArgs({
  options: {
    rounds: { type: "string", default: "5" },
    set: { type: "string", default: "flags" },
    dist: { type: "string", default: join(HERE, "..", "..", "dist") },
    blocks: { type: "string", default: "1" },
    ext: { type: "string", default: "probe" },
    only: { type: "string" },
  },
});

// name -> { node: [node flags], args: [latency.mjs args], env: {}, taskset: "cpus" (whole host from start) }
const SETS = {
  flags: {
    baseline: {},
    "semi-64": { node: ["--max-semi-space-size=64"] },
    "single-threaded-gc": { node: ["--single-threaded-gc"] },
    "single-threaded": { node: ["--single-threaded"] },
    "v8-pool-1": { node: ["--v8-pool-size=1"] },
    "no-opt": { node: ["--no-opt"] },
    "warmup-10k": { args: ["--warmup", "10000"] },
    "min-semi-16": { node: ["--min-semi-space-size=16"] },
    maglev: { node: ["--maglev"] },
  },
  semi: {
    baseline: {},
    "min-semi-16": { node: ["--min-semi-space-size=16"] },
    "min-semi-64": { node: ["--min-semi-space-size=64", "--max-semi-space-size=64"] },
    "semi-1": { node: ["--max-semi-space-size=1"] },
  },
  harness: {
    baseline: {},
    "warmup-2k": { args: ["--warmup", "2000"] },
    "warmup-5k": { args: ["--warmup", "5000"] },
    "warmup-10k": { args: ["--warmup", "10000"] },
    "calls-10k": { args: ["--calls", "10000"] },
    "warmup-10k+same-main": { args: ["--warmup", "10000", "--pin", "same-main"] },
  },
  pin: {
    baseline: {},
    "same(all threads)": { args: ["--pin", "same"] },
    "split(all threads)": { args: ["--pin", "split"] },
    "same-main": { args: ["--pin", "same-main"] },
    "split-main": { args: ["--pin", "split-main"] },
  },
  yield: {
    baseline: {},
    "yield-immediate": { args: ["--yield", "immediate"] },
    "yield-timeout": { args: ["--yield", "timeout"] },
  },
  pygc: {
    baseline: {},
    "py-gc-off": { args: ["--py-gc-off"] },
  },
};

const configs = Object.entries(
  SETS[cli.set] ??
    (() => {
      throw new Error(`--set: ${Object.keys(SETS)}`);
    })(),
).filter(([name]) => !cli.only || cli.only.split(",").includes(name));
const work = mkdtempSync(join(tmpdir(), "sweep-"));
const results = Object.fromEntries(configs.map(([name]) => [name, []]));
const rounds = Number(cli.rounds);

for (let round = 0; round < rounds; round++) {
  for (const [name, c] of configs) {
    const out = join(work, `${name.replace(/\W/g, "_")}-${round}.json`);
    const argv = [
      ...(c.node ?? []),
      join(HERE, "latency.mjs"),
      "--dist",
      cli.dist,
      "--ext",
      cli.ext,
      "--blocks",
      cli.blocks,
      "--quiet",
      "--json",
      out,
      "--label",
      name,
      ...(c.args ?? []),
    ];
    const cmd = c.taskset ? ["taskset", ["-c", c.taskset, process.execPath, ...argv]] : [process.execPath, argv];
    try {
      execFileSync(cmd[0], cmd[1], {
        env: { ...process.env, ...(c.env ?? {}) },
        stdio: ["ignore", "ignore", "inherit"],
        timeout: 120_000,
      });
      results[name].push(JSON.parse(readFileSync(out, "utf8")).blocks);
    } catch (error) {
      console.error(`${name} round ${round}: ${error.message.split("\n")[0]}`);
    }
  }
  process.stderr.write(
    `round ${round + 1}/${rounds} done (load ${readFileSync("/proc/loadavg", "utf8").split(" ")[0]})\n`,
  );
}

const med = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const f = (x) => (Number.isFinite(x) ? x.toFixed(0) : "-");
console.log(`set ${cli.set}, ${rounds} rounds, median over rounds (µs); p99 of each round in brackets`);
console.log(
  "| config | block | p50 | p90 | p99 | p99.9 | max | p99 per round | node GCs | slow w/ node GC | host invol csw | guest invol csw | runs dropped (busy machine) |",
);
console.log("|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|");
for (const [name] of configs) {
  const runs = results[name];
  if (!runs.length) continue;
  for (let b = 0; b < runs[0].length; b++) {
    // Blocks during which other processes took over 30% of one CPU are left out (count in the last column).
    const all = runs.map((r) => r[b]).filter(Boolean);
    const blocks = all.filter((x) => x.foreignCpuMs <= 0.3 * x.wallMs);
    if (!blocks.length) {
      console.log(`| ${name} | ${b} | all ${all.length} runs contaminated |`);
      continue;
    }
    const m = (k) => med(blocks.map((x) => x[k]));
    console.log(
      `| ${name} | ${b} | ${f(m("p50"))} | ${f(m("p90"))} | ${f(m("p99"))} | ${f(m("p999"))} | ${f(m("max"))} | ${blocks.map((x) => f(x.p99)).join(" ")} | ${f(m("nodeGcCount"))} | ${f(m("slowWithNodeGc"))} | ${f(m("hostInvolCsw"))} | ${f(m("guestInvolCsw"))} | ${all.length - blocks.length} |`,
    );
  }
}
