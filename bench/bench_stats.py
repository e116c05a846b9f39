"""Latency statistics for the Python side; bench/stats.mjs computes the same definitions."""

import math


def median(values):
    """Middle value; the mean of the two middle values when the count is even."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        raise ValueError("median of no values")
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def percentile(values, p):
    """Nearest-rank percentile: the smallest value with at least p% of values at or below it."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        raise ValueError("percentile of no values")
    rank = max(1, math.ceil(p / 100 * n))
    return ordered[rank - 1]


def latency_summary(prefix, samples_ns):
    """Median and p99 of nanosecond samples, in microseconds, under prefix_median_us / prefix_p99_us."""
    return {
        f"{prefix}_median_us": median(samples_ns) / 1e3,
        f"{prefix}_p99_us": percentile(samples_ns, 99) / 1e3,
    }
