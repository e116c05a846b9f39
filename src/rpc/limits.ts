// What one extension's frames may cost the host: the limits, their defaults, and the checks that keep them.

import { ProtocolError } from "../errors.js";
import { MAX_DEPTH } from "./codec-encode.js";
import { DEFAULT_MAX_FRAME_BYTES } from "./protocol.js";

/**
 * Per-connection limits on what the other side may send (docs/protocol.md, Limits). A frame or fd past one of
 * them is a ProtocolError that names the limit and the number; the connection (and its extension) is dropped,
 * never the host. Tensors in shared memory do not count against the frame limits: only their descriptors travel.
 */
export interface ProtocolLimits {
  /** Largest frame, prefix excluded (JSON header plus attachments): the host buffers a whole frame. */
  maxFrameBytes: number;
  /** Largest JSON header of a frame (strings travel in it; bytes go as attachments). */
  maxHeaderBytes: number;
  /** Most attachments in one frame (each costs the host an object, whatever its size). */
  maxAttachments: number;
  /** Most file descriptors one frame may announce (field `f`). */
  maxFdsPerFrame: number;
  /** Most shared segments the extension may hold for the connection at once (each pins a host fd). */
  maxSegments: number;
  /** Most bytes those segments may add up to. */
  maxSegmentBytes: number;
  /** Longest stdout/stderr line kept whole; a longer one is delivered in pieces of this many characters. */
  maxLineChars: number;
}

export const DEFAULT_LIMITS: Readonly<ProtocolLimits> = Object.freeze({
  maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
  maxHeaderBytes: 16 * 1024 * 1024,
  maxAttachments: 65_536,
  maxFdsPerFrame: 1024,
  maxSegments: 4096,
  maxSegmentBytes: 64 * 1024 * 1024 * 1024,
  maxLineChars: 64 * 1024,
});

/** Each limit's smallest and largest allowed setting (the u32 length fields bound the frame ones). */
const RANGES: Readonly<Record<keyof ProtocolLimits, readonly [number, number]>> = {
  maxFrameBytes: [64, 0xffff_ffff - 4],
  maxHeaderBytes: [64, 0xffff_ffff - 8],
  maxAttachments: [0, 16 * 1024 * 1024],
  maxFdsPerFrame: [0, 65_536],
  maxSegments: [0, 1024 * 1024],
  maxSegmentBytes: [0, Number.MAX_SAFE_INTEGER],
  maxLineChars: [80, 64 * 1024 * 1024],
};

export const LIMIT_NAMES = Object.keys(RANGES) as (keyof ProtocolLimits)[];

/**
 * A frame header's JSON nesting limit: a value may be MAX_DEPTH levels deep for the codec, and one level of a
 * `$map` takes three of JSON ({"$map": [[k, v]]}); the message and its field add a few more.
 */
export const MAX_HEADER_DEPTH = 3 * MAX_DEPTH + 8;

/**
 * The limits with `partial` over the defaults; throws RangeError naming the first key that is unknown or out of
 * its range (the caller turns it into a ConfigError).
 */
export function resolveLimits(partial: Partial<ProtocolLimits> = {}): ProtocolLimits {
  const limits: ProtocolLimits = { ...DEFAULT_LIMITS };
  for (const [key, value] of Object.entries(partial)) {
    if (!Object.hasOwn(RANGES, key))
      throw new RangeError(`unknown limit ${JSON.stringify(key)}; known: ${LIMIT_NAMES.join(", ")}`);
    if (value === undefined) continue;
    const range = RANGES[key as keyof ProtocolLimits];
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < range[0] || value > range[1]) {
      throw new RangeError(`${key} must be an integer from ${range[0]} to ${range[1]}, got ${String(value)}`);
    }
    limits[key as keyof ProtocolLimits] = value;
  }
  return limits;
}

/** The ProtocolError for a count past a limit: it names the limit, the count and the allowed number. */
export function overLimit(
  limit: keyof ProtocolLimits | "maxDepth",
  what: string,
  count: number,
  allowed: number,
): ProtocolError {
  return new ProtocolError(`${what}: ${count} exceeds the limit ${limit} = ${allowed}`);
}

/**
 * True when `value` nests deeper than `max` levels of arrays and objects (the value itself is level 1).
 * Iterative, so a hostile depth cannot overflow the stack here; stops at the first path past the limit.
 */
export function nestsDeeperThan(value: unknown, max: number): boolean {
  if (typeof value !== "object" || value === null) return false;
  const stack: unknown[] = [value];
  const depths: number[] = [1];
  while (stack.length > 0) {
    const node = stack.pop() as object;
    const depth = depths.pop()!;
    if (depth > max) return true;
    const items = Array.isArray(node) ? node : Object.values(node);
    for (const item of items) {
      if (typeof item === "object" && item !== null) {
        stack.push(item);
        depths.push(depth + 1);
      }
    }
  }
  return false;
}
