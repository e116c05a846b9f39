// The floors of issue 4 for the tensor benchmark, judged from the measured metrics of both sides.

import { FORWARD_SIZES, PLAN, forwardKey, roundTripKey } from "./tensor-plan.mjs";

const SMALL_CALL_FACTOR = 3; // every size within 3x of our own small-call latency
const NUMPY_TOLERANCE = 1.1; // "numpy as fast as torch": within 10% at each size

const fmt = (x) => (x >= 100 ? x.toFixed(0) : x.toPrecision(3));
const roundTrips = () =>
  PLAN.round_trip_frameworks.flatMap((framework) =>
    PLAN.sizes.map((size) => ({ key: roundTripKey(framework, size.label), name: `${framework} ${size.label}` })),
  );
const forwards = () => FORWARD_SIZES.map((size) => ({ key: forwardKey(size.label), name: `forward ${size.label}` }));

function verdict(name, failures, measured, detail) {
  if (measured === 0) return { name, verdict: "n/a", detail: "nothing measured" };
  return {
    name,
    verdict: failures.length ? "FAIL" : "PASS",
    detail: failures.length ? `${failures.join("; ")}. ${detail}` : detail,
  };
}

/**
 * Each case against its baseline: the same calls without a tensor (one small call; a call to A then to B for a
 * forward), timed between the case's own reps (`<case>_baseline_us`), so that both ran in the same placement of the
 * processes on this 2-vCPU VM, packed or split (bench/README.md, Session 13). A result from before baselines were
 * timed falls back to `calls` small calls measured once at the scenario's start.
 */
function withinSmallCall(ours, cases, calls, name) {
  const single = ours.metrics?.tensor_small_call_median_us;
  const failures = [];
  let worst = { ratio: 0 };
  for (const c of cases) {
    const value = ours.metrics?.[c.key];
    const baseline = ours.metrics?.[c.key.replace(/_median_us$/, "_baseline_us")];
    const base = typeof baseline === "number" ? baseline : calls * single;
    if (typeof value !== "number" || !Number.isFinite(base)) {
      failures.push(`${c.name} not measured`);
      continue;
    }
    if (value > SMALL_CALL_FACTOR * base) failures.push(`${c.name} ${fmt(value)} µs against ${fmt(base)} µs`);
    if (value / base > worst.ratio) worst = { ratio: value / base, name: c.name, base };
  }
  const against = calls > 1 ? "a call to A then to B" : "a small call";
  const detail = `each within ${SMALL_CALL_FACTOR}× of ${against} timed between its reps; worst ${worst.name} at ${worst.ratio.toFixed(2)}× (${fmt(worst.base ?? NaN)} µs)`;
  return verdict(name, failures, cases.length, detail);
}

/**
 * From the paired comparison (calls alternating, ours_tensors.mjs) where it ran; else from the two round-trip cases,
 * which ran a few seconds apart.
 */
function numpyAsFastAsTorch(ours) {
  const name = `numpy as fast as torch (ours, numpy ≤ ${NUMPY_TOLERANCE}× torch at each size, calls alternating)`;
  const failures = [];
  const ratios = [];
  for (const size of PLAN.sizes) {
    const paired = ours.metrics?.[`tensor_paired_numpy_over_torch_${size.label}`];
    const numpy = ours.metrics?.[roundTripKey("numpy", size.label)];
    const torch = ours.metrics?.[roundTripKey("torch", size.label)];
    const ratio = typeof paired === "number" ? paired : numpy / torch;
    if (!Number.isFinite(ratio)) {
      failures.push(`${size.label} not measured`);
      continue;
    }
    const note = typeof paired === "number" ? "" : " (cases, not paired)";
    ratios.push(`${size.label} ${ratio.toFixed(2)}×${note}`);
    if (ratio > NUMPY_TOLERANCE) failures.push(`${size.label}: numpy ${ratio.toFixed(2)}× torch`);
  }
  return verdict(name, failures, PLAN.sizes.length, `numpy/torch: ${ratios.join(", ")}`);
}

/** Where pyisolate skipped a case (too slow or too big to run), it is not faster there. */
function noSizeWherePyisolateIsFaster(ours, pyisolate) {
  const name = "no size where pyisolate is faster (round trips and forwarding)";
  const failures = [];
  const cases = [...roundTrips(), ...forwards()];
  for (const c of cases) {
    const a = ours.metrics?.[c.key];
    const b = pyisolate.metrics?.[c.key];
    if (typeof a !== "number") failures.push(`${c.name}: ours not measured`);
    else if (typeof b === "number" && b < a) failures.push(`${c.name}: pyisolate ${fmt(b)} µs < ours ${fmt(a)} µs`);
  }
  const skipped = cases.filter((c) => pyisolate.skipped?.[c.key]).map((c) => c.name);
  const detail = skipped.length
    ? `pyisolate skipped (counted as slower): ${skipped.join(", ")}`
    : "every case measured on both sides";
  return verdict(name, failures, cases.length, detail);
}

/** [{ name, verdict: "PASS" | "FAIL" | "n/a", detail }] */
export function judgeFloors(ours, pyisolate) {
  if (ours.unavailable)
    return [{ name: "all floors", verdict: "n/a", detail: `ours not available (${ours.unavailable})` }];
  return [
    withinSmallCall(ours, roundTrips(), 1, `every round trip within ${SMALL_CALL_FACTOR}× of our small-call latency`),
    withinSmallCall(
      ours,
      forwards(),
      2,
      `forwarding (two calls) within ${SMALL_CALL_FACTOR}× of a small call to each extension`,
    ),
    numpyAsFastAsTorch(ours),
    pyisolate.unavailable
      ? {
          name: "no size where pyisolate is faster",
          verdict: "n/a",
          detail: `pyisolate not available (${pyisolate.unavailable})`,
        }
      : noSizeWherePyisolateIsFaster(ours, pyisolate),
  ];
}

export function formatFloors(floors) {
  return floors.map((f) => `${f.verdict.padEnd(4)} ${f.name}: ${f.detail}`);
}
