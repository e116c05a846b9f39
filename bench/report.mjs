// Turns the two sides' results into comparison rows, a console table and a markdown table.

import { median } from "./stats.mjs";
import { FORWARD_SIZES, PLAN, forwardKey, roundTripKey } from "./tensor-plan.mjs";

/** The tensor scenario's rows: round trips per framework and size, forwarding, peak RSS at one size. */
function tensorMetrics() {
  const us = (key, label) => ({ key, label, unit: "µs", better: "lower" });
  const mib = (key, label) => ({ key, label, unit: "MiB", better: "lower" });
  const peak = PLAN.peak_rss_size;
  return [
    us("tensor_small_call_median_us", "tensor ext: small call before the cases, median"),
    us("tensor_small_call_pair_median_us", "tensor ext: small call to A then to B before the cases, median"),
    ...PLAN.round_trip_frameworks.flatMap((fw) =>
      PLAN.sizes.map((size) => us(roundTripKey(fw, size.label), `tensor round trip, ${fw} ${size.label}, median`)),
    ),
    ...FORWARD_SIZES.map((size) =>
      us(forwardKey(size.label), `host→A→B forward, ${PLAN.forward.framework} ${size.label}, median`),
    ),
    ...PLAN.round_trip_frameworks.flatMap((fw) => [
      mib(`tensor_peak_rss_host_${fw}_${peak}_mib`, `peak RSS, host, ${fw} ${peak} round trips`),
      mib(`tensor_peak_rss_ext_${fw}_${peak}_mib`, `peak RSS, extension, ${fw} ${peak} round trips`),
    ]),
    ...["host", "a", "b"].map((who) =>
      mib(
        `tensor_fwd_peak_rss_${who}_${peak}_mib`,
        `peak RSS, ${who === "host" ? "host" : `extension ${who.toUpperCase()}`}, ${peak} forward`,
      ),
    ),
  ];
}

/** What each metric means and which direction is better. New scenarios add lines here. */
export const METRICS = [
  {
    key: "host_to_ext_median_us",
    label: "host→ext small call, median (first 2000 calls)",
    unit: "µs",
    better: "lower",
  },
  { key: "host_to_ext_p99_us", label: "host→ext small call, p99 (first 2000 calls)", unit: "µs", better: "lower" },
  {
    key: "host_to_ext_steady_median_us",
    label: "host→ext small call, median (after 12,200 calls)",
    unit: "µs",
    better: "lower",
  },
  {
    key: "host_to_ext_steady_p99_us",
    label: "host→ext small call, p99 (after 12,200 calls)",
    unit: "µs",
    better: "lower",
  },
  { key: "ext_to_host_median_us", label: "ext→host small call, median", unit: "µs", better: "lower" },
  { key: "ext_to_host_p99_us", label: "ext→host small call, p99", unit: "µs", better: "lower" },
  { key: "pipelined_calls_per_s", label: "pipelined throughput (5000 in flight)", unit: "calls/s", better: "higher" },
  {
    key: "pipelined_steady_calls_per_s",
    label: "pipelined throughput, steady state (median of 5 bursts)",
    unit: "calls/s",
    better: "higher",
  },
  { key: "warm_start_median_ms", label: "warm start to first reply, median of 5", unit: "ms", better: "lower" },
  { key: "idle_rss_mib", label: "idle RSS of extension process", unit: "MiB", better: "lower" },
  {
    key: "idle_tree_pss_mib",
    label: "idle PSS of every extension process (ours: Python + supervisor)",
    unit: "MiB",
    better: "lower",
  },
  // Ours only: the sandbox's cost to a warm start (target under 50 ms), medians of 7 interleaved starts.
  {
    key: "sandbox_warm_start_disabled_ms",
    label: "warm start, sandbox disabled (ours only)",
    unit: "ms",
    better: "lower",
  },
  { key: "sandbox_warm_start_bwrap_ms", label: "warm start, bwrap (ours only)", unit: "ms", better: "lower" },
  { key: "sandbox_warm_start_landlock_ms", label: "warm start, Landlock (ours only)", unit: "ms", better: "lower" },
  { key: "sandbox_cost_bwrap_ms", label: "sandbox cost to warm start: bwrap (ours only)", unit: "ms", better: "lower" },
  {
    key: "sandbox_cost_landlock_ms",
    label: "sandbox cost to warm start: Landlock (ours only)",
    unit: "ms",
    better: "lower",
  },
  // Issue 13, bytes: an echo of a Buffer (bytes in Python) and the extension's RSS around the 50 MB echoes.
  { key: "bytes_echo_1MB_median_ms", label: "bytes echo 1 MB, median", unit: "ms", better: "lower" },
  { key: "bytes_echo_50MB_median_ms", label: "bytes echo 50 MB, median", unit: "ms", better: "lower" },
  { key: "bytes_rss_idle_mib", label: "extension RSS before the bytes echoes", unit: "MiB", better: "lower" },
  {
    key: "bytes_rss_at_last_echo_mib",
    label: "extension RSS right after the last 50 MB echo (what a burst holds)",
    unit: "MiB",
    better: "lower",
  },
  {
    key: "bytes_rss_after_50MB_mib",
    label: "extension RSS 1.5 s after the 50 MB echoes",
    unit: "MiB",
    better: "lower",
  },
  { key: "bytes_rss_growth_mib", label: "extension RSS growth across the bytes echoes", unit: "MiB", better: "lower" },
  // Ours only: the same echoes with tensorTransport "copy" (no shared memory: every byte on the socket).
  {
    key: "bytes_copy_echo_1MB_median_ms",
    label: "bytes echo 1 MB, copy mode (ours only)",
    unit: "ms",
    better: "lower",
  },
  {
    key: "bytes_copy_echo_50MB_median_ms",
    label: "bytes echo 50 MB, copy mode (ours only)",
    unit: "ms",
    better: "lower",
  },
  { key: "bytes_copy_peak_rss_mib", label: "extension peak RSS, copy mode (ours only)", unit: "MiB", better: "lower" },
  ...tensorMetrics(),
];

/**
 * Informational metrics kept in the JSON but left out of the table: the first load (not comparable run to run)
 * and the tensor scenario's details (first calls, rep counts, peaks at other sizes).
 */
const untabulated = (key) => key === "first_load_ms" || key.startsWith("tensor_");

/**
 * Folds several rounds of one side into one result: each metric is the median over the
 * rounds that reported it; the raw rounds are kept under `rounds`.
 */
export function combineRounds(results) {
  const ran = results.filter((r) => !r.unavailable);
  if (ran.length === 0) return results[0];
  const keys = [...new Set(ran.flatMap((r) => Object.keys(r.metrics ?? {})))];
  const metrics = Object.fromEntries(
    keys.map((key) => [key, median(ran.map((r) => r.metrics[key]).filter((v) => typeof v === "number"))]),
  );
  const errors = Object.assign({}, ...ran.map((r) => r.errors ?? {}));
  const skipped = Object.assign({}, ...ran.map((r) => r.skipped ?? {}));
  const seconds = ran.reduce((sum, r) => sum + (r.seconds ?? 0), 0);
  return { ...ran[0], metrics, errors, skipped, seconds, rounds: results.length === 1 ? undefined : results };
}

/** One row per metric either side reported or skipped: values, ratio ours/pyisolate and who is ahead. */
export function compare(ours, pyisolate) {
  const known = new Set(METRICS.map((m) => m.key));
  const extra = [...new Set([...Object.keys(ours.metrics ?? {}), ...Object.keys(pyisolate.metrics ?? {})])]
    .filter((key) => !known.has(key) && !untabulated(key))
    .map((key) => ({ key, label: key, unit: "", better: "unknown" }));
  const measured = (metric) =>
    [ours, pyisolate].some((side) => side.metrics?.[metric.key] !== undefined || side.skipped?.[metric.key]);
  return [...METRICS, ...extra].filter(measured).map((metric) => {
    const a = ours.metrics?.[metric.key];
    const b = pyisolate.metrics?.[metric.key];
    const ratio = typeof a === "number" && typeof b === "number" && b !== 0 ? a / b : null;
    const skipped = { ours: ours.skipped?.[metric.key], pyisolate: pyisolate.skipped?.[metric.key] };
    return { ...metric, ours: a ?? null, pyisolate: b ?? null, skipped, ratio, verdict: verdict(ratio, metric.better) };
  });
}

function verdict(ratio, better) {
  if (ratio === null || better === "unknown") return "";
  const oursAhead = better === "lower" ? ratio < 1 : ratio > 1;
  const factor = ratio >= 1 ? ratio : 1 / ratio;
  if (Math.abs(factor - 1) < 0.05) return "about even";
  return `${oursAhead ? "ours" : "pyisolate"} ${factor.toFixed(2)}× better`;
}

export function formatNumber(value) {
  if (value === null || value === undefined) return "n/a";
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString("en-US");
  return value.toPrecision(3);
}

function cells(row) {
  const value = (side) => (row[side] === null && row.skipped?.[side] ? "skipped" : formatNumber(row[side]));
  return [
    `${row.label}${row.unit ? ` (${row.unit})` : ""}`,
    value("ours"),
    value("pyisolate"),
    row.ratio === null ? "n/a" : `${row.ratio.toFixed(2)}×`,
    row.better === "unknown" ? "?" : `${row.better} is better`,
    row.verdict,
  ];
}

const HEADER = ["metric", "ours", "pyisolate", "ratio ours/pyisolate", "direction", "verdict"];

export function consoleTable(rows) {
  const table = [HEADER, ...rows.map(cells)];
  const widths = HEADER.map((_, i) => Math.max(...table.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [line(HEADER), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map((r) => line(cells(r)))].join("\n");
}

export function markdownTable(rows) {
  const line = (r) => `| ${r.join(" | ")} |`;
  const align = HEADER.map((_, i) => (i >= 1 && i <= 3 ? "---:" : "---"));
  return [line(HEADER), line(align), ...rows.map((r) => line(cells(r)))].join("\n");
}
