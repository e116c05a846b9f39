// Benchmark driver: sets up PyPI pyisolate, runs our side then pyisolate's on this machine,
// prints metric | ours | pyisolate | ratio, and writes bench/results/latest.{json,md}.
//
//   node bench/run.mjs [--rounds N] [--only scenario,...] [--skip ours|pyisolate] [--dist DIR]
//   npm run bench -- --rounds 3
//
// --rounds N alternates the sides N times and reports each metric's median over the rounds. A full run (no --only)
// then runs transport-floor.mjs and pool.mjs and judges issue 13's targets from all of it (data-plane.mjs).

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { judgeDataPlane } from "./data-plane.mjs";
import { formatFloors, judgeFloors } from "./floors.mjs";
import { combineRounds, compare, consoleTable, markdownTable } from "./report.mjs";
import { logTail, runLogged, runSide } from "./side-process.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(HERE);
const WORK = join(HERE, ".work");
const RESULTS = join(HERE, "results");
const PYISOLATE_PYTHON = join(WORK, "pyisolate-venv", "bin", "python");

const SETUP_TIMEOUT_MS = 15 * 60_000;
// A side's first run also builds its extension venv.
const SIDE_TIMEOUT_MS = 15 * 60_000;

const { values: cli } = parseArgs({
  options: {
    only: { type: "string" },
    skip: { type: "string" },
    rounds: { type: "string", default: "1" },
    dist: { type: "string" }, // our build to measure; default ../dist
  },
});
const only = cli.only ? ["--only", cli.only] : [];
const rounds = Number(cli.rounds);
if (!Number.isInteger(rounds) || rounds < 1) {
  console.error(`--rounds must be a positive integer, got ${JSON.stringify(cli.rounds)}`);
  process.exit(2);
}
mkdirSync(WORK, { recursive: true });
mkdirSync(RESULTS, { recursive: true });

// Pool scaling has no pyisolate counterpart (it runs one process per extension): its own script, alone.
if (cli.only === "pool") {
  const run = await runLogged(["node", join(HERE, "pool.mjs"), ...(cli.dist ? ["--dist", cli.dist] : [])], {
    cwd: ROOT,
    logFile: join(WORK, "pool.log"),
    timeoutMs: SIDE_TIMEOUT_MS,
  });
  console.log(logTail(join(WORK, "pool.log"), 8));
  process.exit(run.code ?? 1);
}
// Streams have no pyisolate counterpart either (it has no streaming): their own script, alone.
if (cli.only === "stream") {
  const run = await runLogged(["node", join(HERE, "stream.mjs"), ...(cli.dist ? ["--dist", cli.dist] : [])], {
    cwd: ROOT,
    logFile: join(WORK, "stream.log"),
    timeoutMs: SIDE_TIMEOUT_MS,
  });
  console.log(logTail(join(WORK, "stream.log"), 9));
  process.exit(run.code ?? 1);
}

async function setup() {
  const logFile = join(WORK, "setup.log");
  const run = await runLogged(["bash", join(HERE, "setup-pyisolate.sh")], {
    cwd: ROOT,
    logFile,
    timeoutMs: SETUP_TIMEOUT_MS,
  });
  const summary = logTail(logFile, 1);
  if (run.code !== 0)
    return { ok: false, seconds: run.seconds, reason: `setup failed; see ${logFile}:\n${logTail(logFile)}` };
  return { ok: true, seconds: run.seconds, summary };
}

async function side(name, argv) {
  if (cli.skip === name) return { unavailable: "skipped (--skip)" };
  return runSide(name, argv, {
    cwd: ROOT,
    outFile: join(WORK, `${name}.json`),
    logFile: join(WORK, `${name}.log`),
    timeoutMs: SIDE_TIMEOUT_MS,
  });
}

function describeSide(name, result) {
  if (result.unavailable) return `${name}: not available (${result.unavailable})`;
  const failed = Object.entries(result.errors ?? {}).map(([scenario, message]) => `\n  ${scenario} failed: ${message}`);
  return `${name}: ran in ${result.seconds.toFixed(1)}s${failed.join("")}`;
}

/**
 * A full run also measures what issue 13 judges against figures of its own: the transport floor (with our small call
 * in the same rounds) and the pool scaling. Each script writes its JSON to bench/results; undefined when it failed.
 */
async function ownScript(script, resultFile, args, prefix = []) {
  const logFile = join(WORK, resultFile.replace(/\.json$/, ".log"));
  const dist = cli.dist ? ["--dist", cli.dist] : [];
  const run = await runLogged([...prefix, "node", join(HERE, script), ...args, ...dist], {
    cwd: ROOT,
    logFile,
    timeoutMs: SIDE_TIMEOUT_MS,
  });
  if (run.code !== 0) {
    console.log(`${script} failed; see ${logFile}:\n${logTail(logFile)}`);
    return undefined;
  }
  console.log(`${[...prefix, script].join(" ")}: ran in ${run.seconds.toFixed(1)}s`);
  return JSON.parse(readFileSync(join(RESULTS, resultFile), "utf8"));
}

function machine() {
  return {
    cpus: cpus().length,
    cpu_model: cpus()[0]?.model ?? "unknown",
    memory_gib: +(totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    loadavg_before: loadavg()[0],
  };
}

/** What the tensor scenario ran with on each side, and every case it skipped and why. */
function tensorNotes(sides) {
  const { ours, pyisolate } = sides;
  const notes = [];
  if (ours.meta?.tensor_host_memory)
    notes.push(
      `Tensors, ours: host tensors in ${ours.meta.tensor_host_memory}; extensions unsandboxed (ext.pid is the Python process).`,
    );
  if (pyisolate.meta?.tensor_returned_types) {
    const types = Object.entries(pyisolate.meta.tensor_returned_types).map(
      ([fw, type]) => `${fw} comes back as ${type}`,
    );
    notes.push(
      `Tensors, pyisolate: share_torch ${pyisolate.meta.tensor_share_torch}, torch sharing strategy ${pyisolate.meta.tensor_torch_sharing_strategy} (/dev/shm files); ${types.join(", ")} (numpy travels as ndarray.tolist() in JSON).`,
    );
  }
  for (const name of ["ours", "pyisolate"]) {
    // A skipped case also skips its peak-RSS metrics; its median's entry stands for all of them.
    for (const [metric, reason] of Object.entries(sides[name].skipped ?? {})) {
      if (metric.endsWith("_median_us")) notes.push(`${name} skipped ${metric.replace(/_median_us$/, "")}: ${reason}`);
    }
    for (const [metric, reps] of Object.entries(sides[name].metrics ?? {})) {
      if (metric.endsWith("_reps") && reps < 3)
        notes.push(`${name} ${metric.replace(/_reps$/, "")}: median of ${reps} call(s) (the case's time budget)`);
    }
  }
  return notes;
}

function markdown(report, rows) {
  const { pyisolate } = report.sides;
  const notes = [
    `Run ${report.date}, ${report.rounds} round(s) (each metric is the median over rounds), on ${report.machine.cpus} CPUs (${report.machine.cpu_model}); load average before: ${report.machine.loadavg_before.toFixed(2)}.`,
    `pyisolate ${pyisolate.meta?.pyisolate_version ?? "?"} (sandbox ${pyisolate.meta?.sandbox ?? "?"}, share_torch ${pyisolate.meta?.share_torch ?? "?"} for the small-call scenarios); our side: sandbox disabled.`,
    "Ratio is ours / pyisolate; the direction column says whether lower or higher is better.",
    ...tensorNotes(report.sides),
    ...["ours", "pyisolate"].map((name) => describeSide(name, report.sides[name])),
  ];
  const floors = formatFloors(report.floors).map((line) => `- ${line}`);
  const dataPlane = report.data_plane
    ? `\n\n## Targets of issue 13 (data plane)\n\n${formatFloors(report.data_plane)
        .map((line) => `- ${line}`)
        .join("\n")}`
    : "";
  return `# Benchmark: ours vs pyisolate\n\n${markdownTable(rows)}\n\n## Floors of issue 4 (tensors)\n\n${floors.join("\n")}${dataPlane}\n\n## Notes\n\n${notes.map((n) => `- ${n}`).join("\n")}\n`;
}

const machineInfo = machine();
const setupResult = await setup();
console.log(setupResult.ok ? setupResult.summary : `setup: ${setupResult.reason}`);

// Sequential on purpose: with 2 cores, running the sides together would measure contention.
const argvs = {
  ours: ["node", join(HERE, "ours.mjs"), ...only, ...(cli.dist ? ["--dist", cli.dist] : [])],
  pyisolate: [PYISOLATE_PYTHON, join(HERE, "pyisolate_bench.py"), ...only],
};
const perRound = { ours: [], pyisolate: [] };
for (let round = 1; round <= rounds; round++) {
  for (const name of ["ours", "pyisolate"]) {
    const result =
      name === "pyisolate" && !setupResult.ok
        ? { unavailable: `setup failed: ${setupResult.reason}` }
        : await side(name, argvs[name]);
    perRound[name].push(result);
    console.log(`${rounds > 1 ? `round ${round}/${rounds} ` : ""}${describeSide(name, result)}`);
  }
}
const ours = combineRounds(perRound.ours);
const pyisolate = combineRounds(perRound.pyisolate);

const floorRounds = ["--rounds", String(Math.max(3, rounds))];
// Only a full run of our side: a partial one has not measured the bytes and pipelined figures these sit beside.
const dataPlane =
  cli.only || cli.skip === "ours"
    ? undefined
    : judgeDataPlane({
        ours,
        pyisolate,
        floor: await ownScript("transport-floor.mjs", "transport-floor.json", floorRounds),
        // The same on one CPU: each side's own work, without the other vCPU's wake-up (transport-floor.mjs).
        floorOneCpu: await ownScript(
          "transport-floor.mjs",
          "transport-floor-one-cpu.json",
          [...floorRounds, "--out", join(RESULTS, "transport-floor-one-cpu.json")],
          ["taskset", "-c", "0"],
        ),
        // Host on CPU 0, every Python process on CPU 1: each pair split alike (transport-floor.mjs, --peer-cpu).
        floorSplit:
          cpus().length < 2
            ? undefined
            : await ownScript(
                "transport-floor.mjs",
                "transport-floor-split.json",
                [...floorRounds, "--peer-cpu", "1", "--out", join(RESULTS, "transport-floor-split.json")],
                ["taskset", "-c", "0"],
              ),
        pool: await ownScript("pool.mjs", "pool.json", []),
      });

const rows = compare(ours, pyisolate);
const floors = judgeFloors(ours, pyisolate);
const report = {
  date: new Date().toISOString(),
  rounds,
  machine: machineInfo,
  setup: setupResult,
  sides: { ours, pyisolate },
  rows,
  floors,
  ...(dataPlane ? { data_plane: dataPlane } : {}),
};
writeFileSync(join(RESULTS, "latest.json"), `${JSON.stringify(report, null, 2)}\n`);
writeFileSync(join(RESULTS, "latest.md"), markdown(report, rows));

console.log(`\n${consoleTable(rows)}\n`);
console.log("ratio = ours / pyisolate; see the direction column for which way is better.");
console.log(`\nFloors of issue 4 (tensors):\n${formatFloors(floors).join("\n")}\n`);
if (dataPlane) console.log(`Targets of issue 13 (data plane):\n${formatFloors(dataPlane).join("\n")}\n`);
console.log(`wrote ${relative(ROOT, join(RESULTS, "latest.json"))} and ${relative(ROOT, join(RESULTS, "latest.md"))}`);
