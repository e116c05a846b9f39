// Runs the benchmark scenarios against our Node.js host and prints one JSON object on stdout.
//
//   npm run build && node bench/ours.mjs [--out FILE] [--only a,b] [--dist DIR]
//
// Twin of bench/pyisolate_bench.py: same extension (bench/extensions/bench_ext), same call
// counts, same statistics (bench/stats.mjs). A scenario is one async function in SCENARIOS,
// taking the Bench and returning { metric_name: number }; add one here and its twin there.

import { writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { BYTES_CASE_BUDGET_S, BYTES_CASES, BYTES_SETTLE_MS } from "./bytes-plan.mjs";
import { scenarioTensors } from "./ours_tensors.mjs";
import { parentPid, peakRssMiB, pssMiB, rssMiB } from "./procfs.mjs";
import { latencySummary, median } from "./stats.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const EXT_PATH = join(HERE, "extensions", "bench_ext");
const VENV_ROOT = join(HERE, ".work", "ours-venvs");
const DEFAULT_DIST = join(HERE, "..", "dist");

const WARMUP_CALLS = 200;
const TIMED_CALLS = 2000;
/** Calls before the steady-state block: V8 keeps optimizing the call path for thousands of calls (bench/investigate). */
const STEADY_WARMUP_CALLS = 10_000;
const PIPELINED_CALLS = 5000;
const STEADY_BURSTS = 10; // bursts before the steady-state ones (as STEADY_WARMUP_CALLS for the small call)
const TIMED_BURSTS = 5;
const WARM_STARTS = 5;
const SANDBOX_WARM_STARTS = 7;
const IDLE_SETTLE_MS = 500;

/** Owns our manager and the extension currently loaded; collects meta and skipped metrics for the result. */
class Bench {
  constructor(api, meta) {
    this.api = api;
    this.meta = meta;
    this.skipped = {}; // metric -> why it was not measured
    this.manager = new api.ExtensionManager({ venvRoot: VENV_ROOT });
    this.manager.provide("BenchService", {
      async ping(x) {
        return x;
      },
    });
    this.ext = undefined;
  }

  /** Loads the extension and waits for its first reply; returns elapsed ns. Unsandboxed unless told otherwise;
   * `options`: more load options (tensorTransport). */
  async start(sandbox = { mode: "disabled" }, options = {}) {
    const started = process.hrtime.bigint();
    const ext = await this.manager.load({
      name: "bench_ext",
      modulePath: EXT_PATH,
      dependencies: [],
      sandbox,
      ...options,
    });
    await ext.call("ping", [1]);
    const elapsed = process.hrtime.bigint() - started;
    this.ext = ext;
    return elapsed;
  }

  async stop() {
    const ext = this.ext;
    this.ext = undefined;
    if (ext) await ext.stop();
  }

  async ensureStarted() {
    if (!this.ext) await this.start();
    return this.ext;
  }

  skip(metric, reason) {
    this.skipped[metric] = reason;
    console.error(`skipped ${metric}: ${reason}`);
  }

  async close() {
    await this.stop();
    await this.manager.close();
  }
}

// --- scenarios ------------------------------------------------------------------------

async function scenarioIdleRss(bench) {
  const ext = await bench.ensureStarted();
  // The extension reports its own pid on both sides, so both read the same process.
  const pid = await ext.call("pid", []);
  await sleep(IDLE_SETTLE_MS);
  // Every process the extension costs: Python and, without bwrap, the supervisor the guest forks first (its parent).
  const parent = parentPid(pid);
  const tree = parent === process.pid ? [pid] : [pid, parent];
  return { idle_rss_mib: rssMiB(pid), idle_tree_pss_mib: tree.reduce((sum, p) => sum + pssMiB(p), 0) };
}

async function timedPings(ext, count) {
  const samples = [];
  for (let i = 0; i < count; i++) {
    const start = process.hrtime.bigint();
    await ext.call("ping", [1]);
    samples.push(process.hrtime.bigint() - start);
  }
  return samples;
}

/** Two blocks of the same calls: right after a short warm-up (a fresh process), and once warm (steady state). */
async function scenarioHostToExt(bench) {
  const ext = await bench.ensureStarted();
  for (let i = 0; i < WARMUP_CALLS; i++) await ext.call("ping", [1]);
  const fresh = await timedPings(ext, TIMED_CALLS);
  for (let i = 0; i < STEADY_WARMUP_CALLS; i++) await ext.call("ping", [1]);
  const steady = await timedPings(ext, TIMED_CALLS);
  return { ...latencySummary("host_to_ext", fresh), ...latencySummary("host_to_ext_steady", steady) };
}

async function scenarioExtToHost(bench) {
  const ext = await bench.ensureStarted();
  await ext.call("call_host", [WARMUP_CALLS]);
  const samples = await ext.call("call_host", [TIMED_CALLS]);
  return latencySummary("ext_to_host", samples);
}

/**
 * Calls/s with 5000 calls issued at once: one burst after a short warm-up (a fresh process), then, once warm
 * (STEADY_BURSTS bursts first), the median of TIMED_BURSTS bursts.
 */
async function scenarioPipelined(bench) {
  const ext = await bench.ensureStarted();
  const burst = async () => {
    const start = process.hrtime.bigint();
    const replies = await Promise.all(Array.from({ length: PIPELINED_CALLS }, (_, i) => ext.call("ping", [i])));
    const elapsed = process.hrtime.bigint() - start;
    if (!replies.every((reply, i) => reply === i)) throw new Error("pipelined replies out of order or wrong");
    return PIPELINED_CALLS / (Number(elapsed) / 1e9);
  };
  await Promise.all(Array.from({ length: WARMUP_CALLS }, (_, i) => ext.call("ping", [i])));
  const fresh = await burst();
  for (let i = 0; i < STEADY_BURSTS; i++) await burst();
  const steady = [];
  for (let i = 0; i < TIMED_BURSTS; i++) steady.push(await burst());
  return { pipelined_calls_per_s: fresh, pipelined_steady_calls_per_s: median(steady) };
}

async function scenarioWarmStart(bench) {
  // The venv exists by now (the first load made it), so each load only spawns + handshakes.
  await bench.stop();
  const samples = [];
  for (let i = 0; i < WARM_STARTS; i++) {
    samples.push(await bench.start());
    await bench.stop();
  }
  return { warm_start_median_ms: median(samples) / 1e6 };
}

async function scenarioSandboxWarmStart(bench) {
  // Ours only (pyisolate's sandbox runs with its own bwrap policy): what each backend adds to a warm start. The
  // backends are interleaved per round so that drift on a busy machine hits all three alike.
  await bench.stop();
  const backends = {
    disabled: { mode: "disabled" },
    bwrap: { mode: "required", backend: "bwrap" },
    landlock: { mode: "required", backend: "landlock" },
  };
  const samples = Object.fromEntries(Object.keys(backends).map((name) => [name, []]));
  for (let i = 0; i < SANDBOX_WARM_STARTS; i++) {
    for (const [name, sandbox] of Object.entries(backends)) {
      samples[name].push(await bench.start(sandbox));
      await bench.stop();
    }
  }
  const ms = Object.fromEntries(Object.entries(samples).map(([name, s]) => [name, median(s) / 1e6]));
  return {
    sandbox_warm_start_disabled_ms: ms.disabled,
    sandbox_warm_start_bwrap_ms: ms.bwrap,
    sandbox_warm_start_landlock_ms: ms.landlock,
    sandbox_cost_bwrap_ms: ms.bwrap - ms.disabled,
    sandbox_cost_landlock_ms: ms.landlock - ms.disabled,
  };
}

/** Echoes of 1 MB and 50 MB of bytes (a Buffer out, `bytes` in Python, a Uint8Array back); the extension's RSS
 * idle before and settled after the 50 MB echoes. */
async function scenarioBytes(bench) {
  const ext = await bench.ensureStarted();
  const pid = await ext.call("pid", []);
  await sleep(BYTES_SETTLE_MS);
  const out = { bytes_rss_idle_mib: rssMiB(pid) };
  for (const [label, ms] of Object.entries(await echoMedians(ext))) out[`bytes_echo_${label}_median_ms`] = ms;
  out.bytes_rss_at_last_echo_mib = rssMiB(pid); // what a burst holds (pools, kept buffers)
  await sleep(BYTES_SETTLE_MS);
  out.bytes_rss_after_50MB_mib = rssMiB(pid);
  out.bytes_rss_growth_mib = out.bytes_rss_after_50MB_mib - out.bytes_rss_idle_mib;
  // Ours only: the same echoes where shared memory is missing or refused (tensorTransport "copy"): every byte
  // crosses the socket, as it does for pyisolate. A fresh extension, so that its peak RSS is this pass's alone.
  await bench.stop();
  await bench.start(undefined, { tensorTransport: "copy" });
  const copying = bench.ext;
  const copyPid = await copying.call("pid", []);
  for (const [label, ms] of Object.entries(await echoMedians(copying))) out[`bytes_copy_echo_${label}_median_ms`] = ms;
  out.bytes_copy_peak_rss_mib = peakRssMiB(copyPid);
  await bench.stop();
  return out;
}

/** { label: median ms } of the bytes plan's echoes on `ext`, each checked once for what came back. */
async function echoMedians(ext) {
  const medians = {};
  for (const { label, size, reps } of BYTES_CASES) {
    const data = Buffer.alloc(size);
    for (let i = 0; i < size; i += 4096) data[i] = i & 0xff;
    const first = await ext.call("echo", [data]);
    if (!(first instanceof Uint8Array) || !Buffer.from(first.buffer, first.byteOffset, first.byteLength).equals(data)) {
      throw new Error(`bytes echo of ${label} came back different`);
    }
    const samples = [];
    const caseStart = process.hrtime.bigint();
    for (
      let i = 0;
      i < reps && (i < 3 || Number(process.hrtime.bigint() - caseStart) < BYTES_CASE_BUDGET_S * 1e9);
      i++
    ) {
      const start = process.hrtime.bigint();
      await ext.call("echo", [data]);
      samples.push(process.hrtime.bigint() - start);
    }
    medians[label] = median(samples) / 1e6;
  }
  return medians;
}

const SCENARIOS = {
  idle_rss: scenarioIdleRss,
  host_to_ext: scenarioHostToExt,
  ext_to_host: scenarioExtToHost,
  pipelined: scenarioPipelined,
  warm_start: scenarioWarmStart,
  sandbox_warm_start: scenarioSandboxWarmStart,
  bytes: scenarioBytes,
  tensors: scenarioTensors, // ours_tensors.mjs; last, as it stops the small-call extension
};

// --- driver ---------------------------------------------------------------------------

function describe(error) {
  return `${error?.name ?? "Error"}: ${error?.message ?? String(error)}`;
}

async function run(selected, dist) {
  const metrics = {};
  const errors = {};
  const meta = { sandbox: "disabled", node: process.version, cpus: cpus().length };
  let api;
  try {
    api = await import(pathToFileURL(join(dist, "index.js")).href);
  } catch (error) {
    const hint = dist === DEFAULT_DIST ? " (run npm run build)" : "";
    return {
      side: "ours",
      meta,
      metrics,
      errors: { load: `cannot import ${join(dist, "index.js")}${hint}: ${describe(error)}` },
    };
  }
  meta.runtime_version = api.RUNTIME_VERSION ?? null;
  let bench;
  try {
    bench = new Bench(api, meta);
    metrics.first_load_ms = Number(await bench.start()) / 1e6;
    meta.reported_pid_matches = (await bench.ext.call("pid", [])) === bench.ext.pid;
    for (const name of selected) {
      try {
        Object.assign(metrics, await SCENARIOS[name](bench));
      } catch (error) {
        errors[name] = describe(error); // one broken scenario must not hide the others
      }
    }
  } catch (error) {
    errors.load = describe(error);
  } finally {
    if (bench) await bench.close().catch((error) => (errors.close = describe(error)));
  }
  meta.loadavg_at_end = loadavg()[0];
  return { side: "ours", meta, metrics, skipped: bench?.skipped ?? {}, errors };
}

function parseCli() {
  const { values } = parseArgs({
    options: { out: { type: "string" }, only: { type: "string" }, dist: { type: "string", default: DEFAULT_DIST } },
  });
  const selected = values.only ? values.only.split(",") : Object.keys(SCENARIOS);
  const unknown = selected.filter((name) => !(name in SCENARIOS));
  if (unknown.length) {
    console.error(`--only: unknown scenario(s) ${unknown.join(", ")}; known: ${Object.keys(SCENARIOS).join(",")}`);
    process.exit(2);
  }
  return { out: values.out, selected, dist: values.dist };
}

const { out, selected, dist } = parseCli();
const result = await run(selected, dist);
const text = JSON.stringify(result, null, 2);
if (out) writeFileSync(out, `${text}\n`);
process.stdout.write(`${text}\n`);
process.exitCode = Object.keys(result.errors).length ? 1 : 0;
