// fast-check generators of hostile wire input (values with tags, message headers, frame bytes) and the run settings.

import fc from "fast-check";
import { encodeFrame } from "../src/rpc/framing.js";

/**
 * How long each property runs: in `npm test` a fixed seed and a few hundred runs (seconds, reproducible);
 * scripts/fuzz.mjs raises the runs, sets a time budget and a fresh seed through these variables.
 */
export function fuzzSettings(defaultRuns = 300): fc.Parameters<unknown> {
  const runs = Number(process.env.PYISOLATE_FUZZ_RUNS ?? defaultRuns);
  const seconds = Number(process.env.PYISOLATE_FUZZ_SECONDS ?? 0);
  const seed = Number(process.env.PYISOLATE_FUZZ_SEED ?? 8008);
  return {
    numRuns: runs,
    seed,
    ...(seconds > 0 ? { interruptAfterTimeLimit: seconds * 1000, markInterruptAsFailure: false } : {}),
  };
}

const DTYPES = ["bool", "int8", "uint8", "int64", "float16", "bfloat16", "float32", "complex128", "float128", ""];

/** Integers where the checks sit: negatives, zero, small, around 2^31, 2^32, 2^53, non-integers, NaN. */
export const edgeNumber = fc.oneof(
  fc.integer({ min: -3, max: 8 }),
  fc.constantFrom(2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, 2 ** 53, -(2 ** 53), 1e308, 0.5, -0, NaN, Infinity),
  fc.double(),
);

/** Any JSON leaf, biased to the shapes the decoders branch on. */
const leaf = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  edgeNumber,
  fc.string({ maxLength: 8 }),
  fc.constantFrom("$bytes", "$int", "nan", "inf", "-inf", "-", "__proto__", "constructor", "1e5", "-0", "0x10"),
  fc.string({ unit: "binary", maxLength: 6 }),
);

/** A `$tensor` payload: mostly descriptor-shaped, with each field sometimes wrong. */
function tensorPayload(value: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  const storage = fc.oneof(
    fc.record({ kind: fc.constant("bytes"), attachment: edgeNumber }, { requiredKeys: ["kind"] }),
    fc.record(
      { kind: fc.constant("shm"), size: edgeNumber, fd: edgeNumber, id: edgeNumber },
      { requiredKeys: ["kind"] },
    ),
    fc.record(
      { kind: fc.constant("cuda"), size: edgeNumber, device: edgeNumber, ipc: value },
      { requiredKeys: ["kind"] },
    ),
    value,
  );
  return fc.oneof(
    fc.record(
      {
        dtype: fc.constantFrom(...DTYPES),
        shape: fc.array(edgeNumber, { maxLength: 4 }),
        strides: fc.array(edgeNumber, { maxLength: 4 }),
        offset: edgeNumber,
        storage,
        framework: leaf,
        device: leaf,
        requiresGrad: leaf,
      },
      { requiredKeys: ["dtype", "shape", "storage"] },
    ),
    value,
  );
}

/** A decoded-JSON value as a hostile peer could send it: plain JSON with tags (well-formed or not) at any depth. */
export const wireValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => {
  const value = tie("value");
  const tag = (name: string, payload: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> =>
    payload.map((p) => ({ [name]: p }));
  return {
    value: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      leaf,
      fc.array(value, { maxLength: 4 }),
      fc.dictionary(fc.string({ maxLength: 5 }), value, { maxKeys: 4 }),
      tag("$bytes", fc.oneof(edgeNumber, value)),
      tag(
        "$int",
        fc.oneof(
          fc.bigInt().map(String),
          fc.string({ maxLength: 6 }),
          fc.constant("-"),
          fc.constant("1".repeat(5000)),
          value,
        ),
      ),
      tag("$float", fc.oneof(fc.constantFrom("nan", "inf", "-inf", "NaN", "Infinity"), value)),
      tag("$fn", fc.oneof(edgeNumber, value)),
      tag(
        "$map",
        fc.oneof(
          fc.array(fc.oneof(fc.tuple(value, value), fc.array(value, { maxLength: 3 })), { maxLength: 4 }),
          value,
        ),
      ),
      tag("$tensor", tensorPayload(value)),
      fc.string({ maxLength: 6 }).chain((name) => tag(`$${name}`, value)),
    ),
  };
}).value;

const KINDS = ["call", "result", "error", "cancel", "release", "event", "hello", "init", "ready", "fatal", "shutdown"];

/** A frame header shaped like the protocol's messages, each field sometimes of the wrong type or missing. */
export const messageHeader: fc.Arbitrary<Record<string, unknown>> = fc.record(
  {
    k: fc.oneof(fc.constantFrom(...KINDS), leaf, wireValue),
    id: fc.oneof(edgeNumber, wireValue),
    x: fc.oneof(fc.constant(1), leaf),
    f: fc.oneof(fc.constant(0), edgeNumber, leaf),
    fn: fc.oneof(edgeNumber, wireValue),
    target: fc.oneof(fc.constantFrom("svc", "extension", "nope"), leaf),
    method: fc.oneof(fc.constantFrom("echo", "boom", "constructor", "__proto__", "toString"), leaf),
    args: fc.oneof(fc.array(wireValue, { maxLength: 4 }), wireValue),
    kw: fc.oneof(
      fc.dictionary(
        fc.oneof(fc.constantFrom("a", "b_1", "$x", "1a", "__proto__"), fc.string({ maxLength: 4 })),
        wireValue,
        { maxKeys: 3 },
      ),
      wireValue,
    ),
    value: wireValue,
    payload: wireValue,
    name: fc.oneof(fc.constantFrom("tick", "stdout"), leaf),
    error: fc.oneof(
      fc.record({ type: leaf, message: leaf, traceback: leaf, module: leaf }, { requiredKeys: [] }),
      wireValue,
    ),
    fns: fc.oneof(fc.array(edgeNumber, { maxLength: 4 }), wireValue),
    segs: fc.oneof(fc.array(edgeNumber, { maxLength: 4 }), wireValue),
    cuda: fc.oneof(fc.array(leaf, { maxLength: 3 }), wireValue),
  },
  { requiredKeys: ["k"] },
);

/** A message a correct peer could send (tags in its values may still be malformed): reaches past the shape checks. */
export const validMessage: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  fc.record({
    k: fc.constant("call"),
    id: fc.integer({ min: 1, max: 50 }),
    target: fc.constant("svc"),
    method: fc.constantFrom("echo", "boom", "missing"),
    args: fc.array(wireValue, { maxLength: 3 }),
    x: fc.constant(1),
  }),
  fc.record({
    k: fc.constant("call"),
    id: fc.integer({ min: 1, max: 50 }),
    target: fc.constant("svc"),
    method: fc.constant("echo"),
    args: fc.array(fc.jsonValue({ maxDepth: 3 }), { maxLength: 3 }),
  }),
  fc.record({ k: fc.constant("result"), id: fc.integer({ min: 1, max: 3 }), value: wireValue, x: fc.constant(1) }),
  fc.record({
    k: fc.constant("error"),
    id: fc.integer({ min: 1, max: 3 }),
    error: fc.record({ type: fc.string(), message: fc.string() }),
  }),
  fc.record({ k: fc.constant("cancel"), id: fc.integer({ min: 1, max: 50 }) }),
  fc.record({ k: fc.constant("release"), fns: fc.array(fc.nat(20), { maxLength: 3 }) }),
  fc.record({ k: fc.constant("event"), name: fc.string({ maxLength: 5 }), payload: wireValue, x: fc.constant(1) }),
);

/** A frame with a message header and some attachments, as the bytes a correct peer would write. */
export const wellFormedFrame: fc.Arbitrary<{
  header: Record<string, unknown>;
  attachments: Uint8Array[];
  bytes: Buffer;
}> = fc
  .tuple(fc.oneof(messageHeader, validMessage), fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 3 }))
  .map(([header, attachments]) => {
    const sent = structuredClone(header);
    const bytes = Buffer.concat(encodeFrame(sent, attachments));
    return { header: sent, attachments, bytes };
  });

/** What a hostile stream does to good frames: flips, overwrites, truncation, insertion, random length fields. */
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant("set" as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant("cut" as const), at: fc.nat() }),
  fc.record({ op: fc.constant("insert" as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 8 }) }),
  fc.record({
    op: fc.constant("length" as const),
    at: fc.constantFrom(0, 4),
    value: fc.oneof(fc.nat(), fc.constantFrom(0, 3, 4, 8, 0xffff_ffff)),
  }),
);

type Mutation = { op: string; at: number; byte?: number; bytes?: Uint8Array; value?: number };

function mutate(bytes: Buffer, m: Mutation): Buffer {
  const at = bytes.length === 0 ? 0 : m.at % (bytes.length + 1);
  switch (m.op) {
    case "set": {
      const out = Buffer.from(bytes);
      if (at < out.length) out[at] = m.byte!;
      return out;
    }
    case "cut":
      return bytes.subarray(0, at);
    case "insert":
      return Buffer.concat([bytes.subarray(0, at), m.bytes!, bytes.subarray(at)]);
    default: {
      const out = Buffer.from(bytes);
      if (out.length >= m.at + 4) out.writeUInt32BE(m.value! >>> 0, m.at);
      return out;
    }
  }
}

/** A byte stream: good frames, mutated frames and raw noise, concatenated. */
export const hostileStream: fc.Arbitrary<Buffer> = fc
  .array(
    fc.oneof(
      { weight: 3, arbitrary: wellFormedFrame.map((f) => f.bytes) },
      {
        weight: 3,
        arbitrary: fc
          .tuple(wellFormedFrame, fc.array(mutation, { minLength: 1, maxLength: 3 }))
          .map(([f, ms]) => ms.reduce(mutate, f.bytes)),
      },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)) },
    ),
    { minLength: 1, maxLength: 5 },
  )
  .map((parts) => Buffer.concat(parts));

/** Cut points to split a stream into chunks as a socket might deliver it. */
export const splits = fc.array(fc.nat(), { maxLength: 6 });

export function chunk(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => (bytes.length === 0 ? 0 : c % bytes.length)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    if (p > from) out.push(Buffer.from(bytes.subarray(from, p)));
    from = Math.max(from, p);
  }
  out.push(Buffer.from(bytes.subarray(from)));
  return out;
}
