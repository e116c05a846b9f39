// Latency statistics for the Node side; bench/bench_stats.py computes the same definitions.

/** Middle value; the mean of the two middle values when the count is even. */
export function median(values) {
  const ordered = sortedNumbers(values);
  const mid = Math.floor(ordered.length / 2);
  return ordered.length % 2 ? ordered[mid] : (ordered[mid - 1] + ordered[mid]) / 2;
}

/** Nearest-rank percentile: the smallest value with at least p% of values at or below it. */
export function percentile(values, p) {
  const ordered = sortedNumbers(values);
  const rank = Math.max(1, Math.ceil((p / 100) * ordered.length));
  return ordered[rank - 1];
}

/** Median and p99 of nanosecond samples, in microseconds, under prefix_median_us / prefix_p99_us. */
export function latencySummary(prefix, samplesNs) {
  const ns = samplesNs.map(Number);
  return {
    [`${prefix}_median_us`]: median(ns) / 1e3,
    [`${prefix}_p99_us`]: percentile(ns, 99) / 1e3,
  };
}

function sortedNumbers(values) {
  if (values.length === 0) throw new RangeError("statistics of no values");
  return values.map(Number).sort((a, b) => a - b);
}
