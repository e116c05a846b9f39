// The bytes scenario's sizes and repetitions, shared by ours.mjs (pyisolate_bench.py keeps the same numbers).

export const BYTES_CASES = [
  { label: "1MB", size: 1 << 20, reps: 200 },
  { label: "50MB", size: 50 << 20, reps: 15 },
];
/** Idle time before reading the extension's RSS, so that freed memory is gone. */
export const BYTES_SETTLE_MS = 500;
