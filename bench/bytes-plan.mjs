// The bytes scenario's plan (bytes-plan.json), read by ours.mjs; pyisolate_bench.py reads the same file.

import { readFileSync } from "node:fs";

const PLAN = JSON.parse(readFileSync(new URL("./bytes-plan.json", import.meta.url), "utf8"));

/** [{ label, size, reps }]: echo sizes in bytes and how many timed calls each. */
export const BYTES_CASES = PLAN.cases;
/** Idle time before reading the extension's RSS, so that freed memory is gone: past the 1 s after which each
 * side's pools and kept buffers let go of what a burst used (ours; pyisolate keeps none). */
export const BYTES_SETTLE_MS = PLAN.settle_ms;
/** A case stops repeating after this many seconds (pyisolate's 50 MB echo takes over a second). */
export const BYTES_CASE_BUDGET_S = PLAN.case_budget_s;
