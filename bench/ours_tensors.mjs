// The tensor scenario on our host: round trips of a Tensor at each size of tensor-plan.json (torch and
// numpy), host -> A -> B forwarding, and peak RSS per case. Twin of pyisolate_tensors.py.

import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { memAvailableBytes, peakRssMiB, resetPeakRss, rssMiB } from "./procfs.mjs";
import { median } from "./stats.mjs";
import { FORWARD_SIZES, PLAN, roundTripKey } from "./tensor-plan.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const EXT_PATH = join(HERE, "extensions", "bench_ext");
const ITEM_SIZE = 4; // float32
const MIB = 2 ** 20;

/** The two extension processes: the same bench_ext, each in its own venv with torch and numpy. */
function tensorExtension(name) {
  return {
    name,
    modulePath: EXT_PATH,
    // pip, not uv: pip's global config finds the CPU torch wheel in /opt/wheels.
    dependencies: ["torch==2.13.0", "numpy==2.2.6"],
    installer: "pip",
    // Unsandboxed, as in the other scenarios, and so that ext.pid is the Python process itself.
    sandbox: { mode: "disabled" },
  };
}

const bytesOf = (size) => size.shape.reduce((a, b) => a * b, ITEM_SIZE);
const now = () => process.hrtime.bigint();

/**
 * Skips a case when the previous size of the same kind, scaled by the byte ratio, predicts one call over the
 * plan's max_call_s or a peak RSS growth over its share of MemAvailable (copying transports grow with size).
 */
class Guard {
  #last = new Map(); // kind -> { bytes, callNs, growthBytes } of the last size that ran
  #skippedKinds = new Map();

  reasonToSkip(kind, size) {
    if (this.#skippedKinds.has(kind)) return `a smaller size was skipped (${this.#skippedKinds.get(kind)})`;
    const last = this.#last.get(kind);
    if (!last) return null;
    const scale = bytesOf(size) / last.bytes;
    const seconds = (last.callNs * scale) / 1e9;
    const growth = last.growthBytes * scale;
    const allowed = PLAN.max_memory_fraction * memAvailableBytes();
    let reason = null;
    if (seconds > PLAN.max_call_s) reason = `one call would take ~${seconds.toFixed(0)} s (limit ${PLAN.max_call_s} s)`;
    else if (growth > allowed)
      reason = `peak RSS would grow ~${(growth / 2 ** 30).toFixed(1)} GiB (limit ${(allowed / 2 ** 30).toFixed(1)} GiB)`;
    if (reason) this.#skippedKinds.set(kind, `${size.label}: ${reason}`);
    return reason;
  }

  record(kind, size, callNs, growthBytes) {
    this.#last.set(kind, { bytes: bytesOf(size), callNs, growthBytes });
  }
}

/**
 * After settle_ms, one untimed first call, then up to size.reps timed calls while the case is within budget. Each
 * timed call is preceded by a timed `baseline()` (the same calls without a tensor): on this 2-vCPU VM a pair of
 * processes runs packed on one vCPU or split across two depending on how it started (bench/README.md, Session 13), so
 * the small call the case is judged against is timed between its own reps, in the same placement.
 */
async function timeCase(size, call, baseline) {
  await sleep(PLAN.settle_ms); // the previous case's tensors are freed meanwhile (2 GB takes ~0.1 s), not during this one
  const started = now();
  await call();
  const firstNs = Number(now() - started);
  const samples = [];
  const baselineSamples = [];
  const budgetNs = BigInt(PLAN.case_budget_s * 1e9);
  while (samples.length < size.reps && now() - started < budgetNs) {
    const b0 = now();
    await baseline();
    baselineSamples.push(Number(now() - b0));
    const t0 = now();
    await call();
    samples.push(Number(now() - t0));
  }
  // The first call alone spent the budget: it is the only sample there is.
  return { firstNs, samples: samples.length ? samples : [firstNs], baselineSamples };
}

/** The metric of a case's baseline: the small call (or pair) timed between its reps. */
const baselineMetric = (key) => `${key}_baseline_us`;

/** `{ <key>_baseline_us: median }` when the case timed a baseline between its reps. */
const baselineEntry = (key, value) =>
  value.baselineSamples.length ? { [baselineMetric(key)]: median(value.baselineSamples) / 1e3 } : {};

/** Runs fn with the peak RSS of every pid reset; returns fn's value and each pid's peak and growth. */
async function withPeaks(pids, fn) {
  const before = pids.map((pid) => (resetPeakRss(pid), rssMiB(pid)));
  const value = await fn();
  const peaks = pids.map((pid) => peakRssMiB(pid));
  const growthBytes = peaks.reduce((sum, peak, i) => sum + Math.max(0, peak - before[i]) * MIB, 0);
  return { value, peaks, growthBytes };
}

/** Median, in µs, of `timed()` after `warm()` as many times as the plan says. */
async function timedMedianUs(warm, timed) {
  for (let i = 0; i < PLAN.small_calls.warmup; i++) await warm();
  const samples = [];
  for (let i = 0; i < PLAN.small_calls.timed; i++) {
    const t0 = now();
    await timed();
    samples.push(Number(now() - t0));
  }
  return median(samples) / 1e3;
}

const smallCalls = (ext) =>
  timedMedianUs(
    () => ext.call("ping", [1]),
    () => ext.call("ping", [1]),
  );

/** A small call to A then one to B, timed as a pair: a forward's four messages across three processes, no tensor. */
const smallCallPairs = (a, b) =>
  timedMedianUs(
    () => b.call("ping", [1]),
    async () => {
      await a.call("ping", [1]);
      await b.call("ping", [1]);
    },
  );

/**
 * Imports torch and numpy in both extensions (the first torch call takes ~1 s), then warms the tensor path as the
 * small calls are warmed: `tensor_warmup` echoes of the first size, untimed, before any case.
 */
async function warmFrameworks(bench, a, b) {
  for (const framework of ["torch", "numpy"]) {
    const warm = bench.api.Tensor.zeros(PLAN.sizes[0].shape, PLAN.dtype);
    warm.framework = framework;
    for (const ext of [a, b]) {
      for (let i = 0; i < PLAN.tensor_warmup; i++) (await ext.call("echo", [warm])).release();
    }
    warm.release();
  }
}

const peakKeys = (framework, size) =>
  ["host", "ext"].map((who) => `tensor_peak_rss_${who}_${framework}_${size.label}_mib`);

async function roundTrips(bench, ext, guard, metrics) {
  const { Tensor } = bench.api;
  // Size-major, the frameworks side by side at each size: the machine's speed drifts over minutes, and the
  // "numpy as fast as torch" floor compares the two at one size.
  for (const size of PLAN.sizes) {
    for (const framework of PLAN.round_trip_frameworks) {
      const kind = `rt_${framework}`;
      const key = `tensor_${kind}_${size.label}`;
      const skip = guard.reasonToSkip(kind, size);
      if (skip) {
        for (const metric of [`${key}_median_us`, ...peakKeys(framework, size)]) bench.skip(metric, skip);
        continue;
      }
      const { value, peaks, growthBytes } = await withPeaks([process.pid, ext.pid], async () => {
        const tensor = Tensor.empty(size.shape, PLAN.dtype);
        tensor.data.fill(1); // written once, as a producer would (its pages count in the host's RSS)
        tensor.framework = framework; // what the extension gets: a torch tensor or a numpy array
        const call = async () => {
          const back = await ext.call("echo", [tensor]);
          if (tensor.isShared && back.segment !== tensor.segment) throw new Error(`${key}: came back in other memory`);
          back.release();
        };
        try {
          return await timeCase(size, call, () => ext.call("ping", [1]));
        } finally {
          tensor.release();
        }
      });
      const callNs = median(value.samples);
      guard.record(kind, size, callNs, growthBytes);
      Object.assign(metrics, {
        [`${key}_median_us`]: callNs / 1e3,
        [`${key}_first_us`]: value.firstNs / 1e3,
        [`${key}_reps`]: value.samples.length,
        ...baselineEntry(key, value),
        ...Object.fromEntries(peakKeys(framework, size).map((metric, i) => [metric, peaks[i]])),
      });
    }
  }
}

/** Timed calls per size for the paired comparison: enough for a stable median, few for the large sizes. */
const PAIRED_CALLS = 200;

/**
 * numpy against torch at each size with the calls alternating (torch, numpy, numpy, torch, ...), so both see the same
 * moment of a machine whose speed drifts: the round-trip cases above run a framework's reps in one block, and two
 * blocks a few seconds apart differ by 10-40% here on their own. Both tensors of a size are alive together; no peak
 * RSS is taken. Writes `tensor_paired_numpy_over_torch_<size>`, the ratio of the two medians.
 */
async function numpyAgainstTorch(bench, ext, metrics) {
  const { Tensor } = bench.api;
  for (const size of PLAN.sizes) {
    if (!["torch", "numpy"].every((fw) => typeof metrics[roundTripKey(fw, size.label)] === "number")) continue; // a case the guard skipped is not run here either
    const tensors = ["torch", "numpy"].map((framework) => {
      const tensor = Tensor.empty(size.shape, PLAN.dtype);
      tensor.data.fill(1);
      tensor.framework = framework;
      return tensor;
    });
    const timeOne = async (tensor) => {
      const t0 = now();
      (await ext.call("echo", [tensor])).release();
      return Number(now() - t0);
    };
    try {
      for (const tensor of tensors) await timeOne(tensor); // each framework's first call at this size, untimed
      const samples = [[], []];
      const calls = Math.min(PAIRED_CALLS, size.reps);
      for (let i = 0; i < calls; i++) {
        const order = i % 2 === 0 ? [0, 1] : [1, 0];
        for (const which of order) samples[which].push(await timeOne(tensors[which]));
      }
      metrics[`tensor_paired_numpy_over_torch_${size.label}`] = median(samples[1]) / median(samples[0]);
    } finally {
      for (const tensor of tensors) tensor.release();
    }
  }
}

async function forwarding(bench, a, b, guard, metrics) {
  const { framework } = PLAN.forward;
  for (const size of FORWARD_SIZES) {
    const key = `tensor_fwd_${framework}_${size.label}`;
    const skip = guard.reasonToSkip("fwd", size);
    if (skip) {
      bench.skip(`${key}_median_us`, skip);
      continue;
    }
    const { value, peaks, growthBytes } = await withPeaks([process.pid, a.pid, b.pid], () =>
      timeCase(
        size,
        async () => {
          // A returns the same shared tensor each time; the host hands it to B, which reads one element.
          const tensor = await a.call("make_tensor", [size.shape, framework]);
          const seen = await b.call("describe", [tensor]);
          tensor.release();
          if (seen.shape.join() !== size.shape.join()) throw new Error(`${key}: B saw shape ${seen.shape}`);
        },
        async () => {
          await a.call("ping", [1]); // a forward's four messages across the same three processes, no tensor
          await b.call("ping", [1]);
        },
      ),
    );
    await a.call("drop_tensors", []);
    const callNs = median(value.samples);
    guard.record("fwd", size, callNs, growthBytes);
    Object.assign(metrics, {
      [`${key}_median_us`]: callNs / 1e3,
      [`${key}_first_us`]: value.firstNs / 1e3,
      [`${key}_reps`]: value.samples.length,
      ...baselineEntry(key, value),
      [`tensor_fwd_peak_rss_host_${size.label}_mib`]: peaks[0],
      [`tensor_fwd_peak_rss_a_${size.label}_mib`]: peaks[1],
      [`tensor_fwd_peak_rss_b_${size.label}_mib`]: peaks[2],
    });
  }
}

/** The scenario: loads extensions A and B (venvs built once under the bench's venvRoot), then runs the plan. */
export async function scenarioTensors(bench) {
  await bench.stop(); // the small-call extension idles meanwhile; stopping it keeps its RSS out of the way
  const a = await bench.manager.load(tensorExtension("bench_tensor_a"));
  const b = await bench.manager.load(tensorExtension("bench_tensor_b"));
  try {
    const metrics = {
      tensor_small_call_median_us: await smallCalls(a),
      tensor_small_call_pair_median_us: await smallCallPairs(a, b),
    };
    const probe = bench.api.Tensor.zeros([1], PLAN.dtype);
    bench.meta.tensor_host_memory = probe.isShared ? "shared (memfd segments)" : "heap (copied when sent)";
    probe.release();
    await warmFrameworks(bench, a, b);
    const guard = new Guard();
    await roundTrips(bench, a, guard, metrics);
    await numpyAgainstTorch(bench, a, metrics);
    await forwarding(bench, a, b, guard, metrics);
    return metrics;
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
}
