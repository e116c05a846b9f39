// A pool's options as public types, and the one check of its own keys: how many workers, which key pins a call.

import type { CallOptions, ExtensionOptions } from "../config/options.js";
import { ConfigError } from "../errors.js";

/** The most workers one pool may run: each is a whole Python process with its own memory. */
export const MAX_POOL_WORKERS = 64;

/** `manager.pool()`: the options of `load()`, and how many processes run the extension. */
export interface PoolOptions extends ExtensionOptions {
  /** How many processes of the extension run on its one venv (1 to 64). */
  workers: number;
  /**
   * The most calls one worker is sent at a time (default: no limit). When every ready worker has this many, a call
   * waits on the host, in order, for the first to have room; its timeout and signal count while it waits. `1` suits
   * CPU-bound methods: each worker is sent its next call as it finishes one, so the work spreads evenly to the end.
   * Calls with a `sticky` key and streams go to their worker at once.
   */
  maxInFlight?: number;
}

/** Per-call options of a pool. */
export interface PoolCallOptions extends CallOptions {
  /**
   * Calls with the same key go to the same worker while that worker's process lives (a session's state in Python);
   * after its crash the key is bound anew. `pool.release(key)` forgets a key.
   */
  sticky?: string;
}

/** The most `maxInFlight` may be (a worker's calls in flight are bounded by memory, not by this). */
export const MAX_IN_FLIGHT = 1_000_000;

/** Checks `workers` and `maxInFlight` and returns them apart from the options that load() checks itself. */
export function splitPoolOptions(options: PoolOptions): {
  workers: number;
  maxInFlight: number | undefined;
  rest: ExtensionOptions;
} {
  if (typeof options !== "object" || options === null) throw new ConfigError("pool() needs an options object");
  const { workers, maxInFlight, ...rest } = options;
  if (typeof workers !== "number" || !Number.isInteger(workers) || workers < 1 || workers > MAX_POOL_WORKERS) {
    throw new ConfigError(`workers must be a whole number from 1 to ${MAX_POOL_WORKERS}`, { key: "workers" });
  }
  if (
    maxInFlight !== undefined &&
    !(
      typeof maxInFlight === "number" &&
      Number.isInteger(maxInFlight) &&
      maxInFlight >= 1 &&
      maxInFlight <= MAX_IN_FLIGHT
    )
  ) {
    throw new ConfigError(`maxInFlight must be a whole number from 1 to ${MAX_IN_FLIGHT}`, { key: "maxInFlight" });
  }
  return { workers, maxInFlight, rest };
}

/** Checks a call's sticky key; undefined when absent. */
export function checkStickyKey(key: unknown): string | undefined {
  if (key === undefined) return undefined;
  if (typeof key !== "string" || key.length === 0 || key.length > 1024) {
    throw new ConfigError("sticky must be a non-empty string of at most 1024 characters", { key: "sticky" });
  }
  return key;
}
