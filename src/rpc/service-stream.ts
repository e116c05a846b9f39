// A stream call on a host service method: what the method returns (awaited if a promise) must be an async iterable
// or a generator object, else the stream ends with a TypeError that says what came back instead.

import { isStreamSource, type StreamSource } from "./stream-producer.js";

/** Runs `call` (a service method, already bound to its arguments) and gives the source its items stream from. */
export async function serviceStreamSource(call: () => unknown, what: string): Promise<StreamSource> {
  let result = call();
  if (!isSource(result) && isThenable(result)) result = await result;
  if (isSource(result)) return result;
  throw new TypeError(
    `${what} does not stream: it returned ${describe(result)}, not an async iterable or a generator ` +
      "(write it as an async function* or return an AsyncIterable)",
  );
}

function isSource(value: unknown): value is StreamSource {
  return (typeof value === "object" || typeof value === "function") && value !== null && isStreamSource(value);
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === "object" || typeof value === "function") &&
    value !== null &&
    typeof (value as { then?: unknown }).then === "function"
  );
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return `an object (${value.constructor?.name ?? "no prototype"})`;
  return typeof value === "undefined" ? "undefined" : `a ${typeof value}`;
}
