// Builds test/vectors/frames.json with the real encoder; run: node --import tsx test/vectors/make-frames.ts

import { writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { Codec } from "../../src/rpc/codec.js";
import type { ValueKind } from "../../src/rpc/value-kind.js";
import { encodeFrame } from "../../src/rpc/framing.js";
import { tensorCodec } from "../../src/tensor/codec.js";
import { Tensor } from "../../src/tensor/tensor.js";

export interface FrameVector {
  name: string;
  note: string;
  hex: string;
  header: Record<string, unknown>;
  attachmentsHex: string[];
}

export const VECTORS_PATH = new URL("./frames.json", import.meta.url);

/**
 * Encodes `value` into `message[key]` as the peer does (`encodeMessage`: `x` when tagged, `f` when fds go beside
 * the frame), then frames it. The fds themselves are not part of a vector: they travel on the fd socket.
 */
function vector(
  name: string,
  note: string,
  message: Record<string, unknown>,
  key?: string,
  value?: unknown,
  kinds: readonly ValueKind[] = [],
): FrameVector {
  let nextFn = 1;
  const codec = new Codec({
    callables: { exportFn: () => nextFn++, importFn: () => () => undefined, exportStream: () => nextFn++ },
    kinds,
  });
  let attachments: Uint8Array[] = [];
  if (key !== undefined) {
    const encoded = codec.encode(value, key);
    message[key] = encoded.value;
    if (encoded.tagged) message.x = 1;
    if (encoded.fds.length > 0) message.f = encoded.fds.length;
    attachments = encoded.attachments;
  }
  const hex = Buffer.concat(encodeFrame(message, attachments)).toString("hex");
  return { name, note, hex, header: message, attachmentsHex: attachments.map((a) => Buffer.from(a).toString("hex")) };
}

/** A call with keyword arguments (`kw`): encoded with its args in one go, so that their tags share the frame's attachments. */
function callVector(
  name: string,
  note: string,
  message: Record<string, unknown>,
  args: unknown[],
  kw: Record<string, unknown>,
): FrameVector {
  let nextFn = 1;
  const codec = new Codec({ callables: { exportFn: () => nextFn++, importFn: () => () => undefined } });
  const encoded = codec.encodeCall(args, kw);
  message.args = encoded.value;
  message.kw = encoded.kw;
  if (encoded.tagged) message.x = 1;
  const hex = Buffer.concat(encodeFrame(message, encoded.attachments)).toString("hex");
  return {
    name,
    note,
    hex,
    header: message,
    attachmentsHex: encoded.attachments.map((a) => Buffer.from(a).toString("hex")),
  };
}

/** The element values of the tensor vectors: float32 0..5 in a 2x3 C-order buffer. */
export const TENSOR_ELEMENTS = [0, 1, 2, 3, 4, 5];

/**
 * A shm `$tensor` as tensorCodec writes it (same keys, same order), with a fixed inode: a real one names a live
 * segment, so it cannot be a vector. A 2x3 float32 view in Fortran order (strides [1, 2]) over 24 bytes.
 */
export const SHM_DESCRIPTOR = {
  dtype: "float32",
  shape: [2, 3],
  strides: [1, 2],
  offset: 0,
  storage: { kind: "shm", fd: 0, size: 24, id: 4242 },
  framework: "numpy",
};
/** What the generator sends in place of a live shared tensor (any class instance reaches the value kinds). */
class ShmStandIn {}
const SHM_VALUE = new ShmStandIn();

function fixedShmTensors(): ValueKind {
  return {
    tag: "$tensor",
    accepts: (value) => value instanceof ShmStandIn,
    // The fd number is never sent: only its index in the frame (0) and the count in "f".
    encode: (_value, context) => ({ ...SHM_DESCRIPTOR, storage: { ...SHM_DESCRIPTOR.storage, fd: context.addFd(3) } }),
    decode: () => {
      throw new Error("generator only");
    },
  };
}

/**
 * A shm `$tensor` named by id alone, as PeerSegments writes it for a segment the receiver already keeps: no fd
 * goes with the frame (no "f"), so only a receiver that keeps segment 4242 can decode it.
 */
export const KEPT_DESCRIPTOR = { ...SHM_DESCRIPTOR, storage: { kind: "shm", size: 24, id: 4242 } };

function fixedKeptTensors(): ValueKind {
  return {
    tag: "$tensor",
    accepts: (value) => value instanceof ShmStandIn,
    encode: () => KEPT_DESCRIPTOR,
    decode: () => {
      throw new Error("generator only");
    },
  };
}

/** Copy-mode tensors: a transposed (non-contiguous) float32 view, compacted to C order, and a uint8 vector. */
function copyTensors(): Record<string, unknown> {
  const image = Tensor.from(Float32Array.from(TENSOR_ELEMENTS), [2, 3], { shared: false }).transpose(0, 1);
  image.framework = "numpy";
  const mask = Tensor.from(Uint8Array.of(1, 0, 0, 255), [4], { shared: false });
  mask.framework = "numpy";
  return { image, mask, label: "cat" };
}

export function makeVectors(): FrameVector[] {
  return [
    vector(
      "call_plain",
      "a call without tags: no x, no a",
      { k: "call", id: 1, target: "extension", method: "mean" },
      "args",
      [[1, 2, 3, 4]],
    ),
    vector(
      "result_nested",
      "nested dicts and lists; non-ASCII text is raw UTF-8, not \\u-escaped",
      { k: "result", id: 1 },
      "value",
      { name: "stats", nested: { list: [1, [2, [3, {}]], []], flag: true, none: null }, text: 'héllo ✓ "q"\n' },
    ),
    vector(
      "call_bytes_two",
      "two bytes values travel as attachments 0 and 1, lengths in a",
      { k: "call", id: 2, target: "blobs", method: "concat" },
      "args",
      [Buffer.from("hello"), Uint8Array.of(0, 1, 2, 0xff)],
    ),
    vector(
      "result_int",
      "integers outside +-(2^53-1) as $int; 2^53-1 itself stays a plain number",
      { k: "result", id: 3 },
      "value",
      [2n ** 64n, -(2n ** 63n) - 1n, 2n ** 53n - 1n, -7],
    ),
    vector("result_float", "non-finite floats", { k: "result", id: 4 }, "value", [NaN, Infinity, -Infinity]),
    vector(
      "call_fn",
      "a callable argument, exported by the sender as id 1",
      { k: "call", id: 5, target: "extension", method: "run" },
      "args",
      [() => undefined],
    ),
    vector("call_by_fn", "calling back the callable the receiver exported as 1", { k: "call", id: 6, fn: 1 }, "args", [
      42,
      "x",
    ]),
    vector(
      "result_map",
      "non-string keys, and an object whose only key starts with $",
      { k: "result", id: 7 },
      "value",
      [
        new Map([
          [1, "one"],
          [2, "two"],
        ]),
        { $x: 1 },
      ],
    ),
    vector("error", "a Python exception", {
      k: "error",
      id: 8,
      error: {
        type: "ValueError",
        message: "bad input",
        module: "builtins",
        traceback: 'Traceback (most recent call last):\n  File "ext.py", line 3, in mean\nValueError: bad input\n',
      },
    }),
    vector("cancel", "the caller gave up on its call 9", { k: "cancel", id: 9 }),
    vector("event", "a fire-and-forget event with a payload", { k: "event", name: "progress" }, "payload", {
      done: 3,
      total: 10,
    }),
    vector("release", "the sender dropped its proxies of callables 1 and 2", { k: "release", fns: [1, 2] }),
    vector("hello", "the guest's first message", { k: "hello", v: 1, runtime: "0.1.0", python: "3.11.7", pid: 1234 }),
    vector(
      "result_tensor_copy",
      "tensors in copy mode: each one's elements in C order as an attachment (a transposed float32 view, compacted; a uint8 vector)",
      { k: "result", id: 10 },
      "value",
      copyTensors(),
      [tensorCodec({ transport: "copy", holder: "frame vectors" })],
    ),
    vector(
      "result_tensor_shm",
      'a tensor in shm mode: fd 0 of the frame ("f": 1 fd goes on the fd socket first), a Fortran-order 2x3 float32 view',
      { k: "result", id: 11 },
      "value",
      SHM_VALUE,
      [fixedShmTensors()],
    ),
    vector(
      "result_tensor_kept",
      'a tensor by id alone: segment 4242, which the receiver keeps (no fd, no "f"), the same Fortran-order 2x3 float32 view',
      { k: "result", id: 12 },
      "value",
      SHM_VALUE,
      [fixedKeptTensors()],
    ),
    vector("release_segs", "the guest dropped its last mappings of segments 4242 and 4243 (inodes)", {
      k: "release",
      fns: [],
      segs: [4242, 4243],
    }),
    vector(
      "result_bytes_lent",
      'guest to host: 6 bytes in the guest\'s pooled memfd number 3, fd 0 of the frame ("f": 1); the host copies them out and hands 3 back',
      { k: "result", id: 16, value: { $bytes: { fd: 0, size: 6, lent: 3 } }, x: 1, f: 1 },
    ),
    vector(
      "release_bytes",
      "host to guest: the guest's pooled memfds 3 and 4 were copied out and may be written again",
      {
        k: "release",
        fns: [],
        bytes: [3, 4],
      },
    ),
    callVector(
      "call_kw_plain",
      "mean([1, 2, 3], axis=0, keepdims=True): kw after args; no tags, no x",
      { k: "call", id: 13, target: "extension", method: "mean" },
      [[1, 2, 3]],
      { axis: 0, keepdims: true },
    ),
    callVector(
      "call_kw",
      'mean(b"ab", axis=0, weights=b"xyz", big=2**64, opts={...}): kw\'s bytes are attachment 1, after args\' 0',
      { k: "call", id: 14, target: "extension", method: "mean" },
      [Buffer.from("ab")],
      { axis: 0, weights: Buffer.from("xyz"), big: 2n ** 64n, opts: { names: ["a", "é"], none: null } },
    ),
    vector(
      "call_stream",
      'generate("hi") as a stream call: the callee may send 16 items before more credit',
      { k: "call", id: 15, target: "extension", method: "generate", stream: 16 },
      "args",
      ["hi"],
    ),
    vector("item", "one item of stream call 15, tagged like a result value", { k: "item", id: 15 }, "value", {
      token: "hé",
      raw: Uint8Array.of(1, 2),
    }),
    vector("credit", "the caller of stream call 15 read 8 items: 8 more may come", { k: "credit", id: 15, n: 8 }),
    callVector(
      "call_service_stream",
      'guest to host: Chat().generate("hi", 3, upper=True) on the service "Chat", read as a stream of window 16',
      { k: "call", id: 17, target: "Chat", method: "generate", stream: 16 },
      ["hi", 3],
      { upper: true },
    ),
    vector(
      "call_iter",
      "a host async iterable as an argument: exported as stream 1, which the receiver reads with a stream call on fn 1",
      { k: "call", id: 16, target: "extension", method: "collect" },
      "args",
      [
        (async function* numbers() {
          yield 1;
        })(),
      ],
    ),
  ];
}

/** One vector per line: readable diffs, still plain JSON. */
export function renderVectors(): string {
  return `[\n${makeVectors()
    .map((v) => `  ${JSON.stringify(v)}`)
    .join(",\n")}\n]\n`;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  writeFileSync(VECTORS_PATH, renderVectors());
  console.log(`wrote ${VECTORS_PATH.pathname}`);
}
