// The `output` load option: how many lines, events and bytes per second each of an extension's streams may pass.

import { ConfigError } from "../errors.js";

/** The streams an extension can flood the host with; each has its own budget. */
export const OUTPUT_STREAMS = ["stdout", "stderr", "events"] as const;
export type OutputStream = (typeof OUTPUT_STREAMS)[number];

/**
 * Per stream of one extension (stdout lines, stderr lines, `emit_event` events, each counted alone): the steady
 * rate, and `burst`, how many lines may pass at once after a quiet spell. The byte budget holds as many bytes as
 * pass in the time `burst` lines take (`bytesPerSecond * burst / linesPerSecond`). Past either budget, lines are
 * dropped, counted and reported as a `dropped` event.
 */
export interface OutputLimits {
  linesPerSecond: number;
  bytesPerSecond: number;
  burst: number;
}

/** Generous for logs a person reads; a loop that prints as fast as it can is cut to this. */
export const DEFAULT_OUTPUT_LIMITS: Readonly<OutputLimits> = Object.freeze({
  linesPerSecond: 2000,
  bytesPerSecond: 1024 * 1024,
  burst: 4000,
});

const RANGES: Readonly<Record<keyof OutputLimits, readonly [number, number]>> = {
  linesPerSecond: [1, 10_000_000],
  bytesPerSecond: [1, 1024 * 1024 * 1024],
  burst: [1, 100_000_000],
};

/** The option over the defaults; a ConfigError names the key (`output.linesPerSecond`, ...) that is wrong. */
export function resolveOutputLimits(partial: unknown): OutputLimits {
  if (partial === undefined) return { ...DEFAULT_OUTPUT_LIMITS };
  if (typeof partial !== "object" || partial === null || Array.isArray(partial)) {
    throw new ConfigError(
      "output must be an object such as { linesPerSecond: 2000, bytesPerSecond: 1048576, burst: 4000 }",
      { key: "output" },
    );
  }
  const limits: OutputLimits = { ...DEFAULT_OUTPUT_LIMITS };
  for (const [key, value] of Object.entries(partial)) {
    if (!Object.hasOwn(RANGES, key)) {
      throw new ConfigError(`output: unknown key ${JSON.stringify(key)}; known: ${Object.keys(RANGES).join(", ")}`, {
        key: `output.${key}`,
      });
    }
    if (value === undefined) continue;
    const [min, max] = RANGES[key as keyof OutputLimits];
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
      throw new ConfigError(`output.${key} must be an integer from ${min} to ${max}, got ${String(value)}`, {
        key: `output.${key}`,
      });
    }
    limits[key as keyof OutputLimits] = value;
  }
  return limits;
}
