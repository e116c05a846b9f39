// Message plumbing shared by both directions: header validation and encoding a value into a message.

import { ProtocolError } from "../errors.js";
import type { Codec, EncodedValue, FdHold } from "./codec.js";
import { encodeFrame } from "./framing.js";
import { isKeywordName } from "./kwargs.js";
import { overLimit } from "./limits.js";
import type { CallableTables } from "./peer-callables.js";
import type { CallMessage, WireError } from "./protocol.js";

/** A frame's chunks; `fds` (with the holds that keep them open) go by the fd channel just before them. */
export type FrameChunks = Buffer[] & { fds?: number[]; holds?: FdHold[] };

/** Most fds one frame may announce in its header field `f` when no limit is given (limits.ts has the default). */
export const MAX_FRAME_FDS = 4096;

/**
 * Frames `message` with `value` encoded into its field `key` (setting `x` when tags were produced); `root`
 * names the value in refusal messages. If the value cannot be sent, the callables it exported are forgotten again and the TypeError is thrown.
 */
export function encodeMessage(
  codec: Codec, callables: CallableTables, message: Record<string, unknown>, key: string, value: unknown,
  root = key,
): FrameChunks {
  const mark = callables.mark;
  try {
    const encoded = codec.encode(value, root);
    message[key] = encoded.value;
    return frameEncoded(message, encoded);
  } catch (err) {
    callables.rollback(mark);
    throw err;
  }
}

/**
 * Frames a `call` with its `args` and, when there are keyword arguments, `kw` (one encode, so that tags in both
 * share the frame's attachments and fds). Without `kw` this is `encodeMessage(..., "args", args)`.
 */
export function encodeCallMessage(
  codec: Codec, callables: CallableTables, message: Record<string, unknown>, args: unknown[],
  kw: Record<string, unknown> | undefined,
): FrameChunks {
  if (kw === undefined) return encodeMessage(codec, callables, message, "args", args);
  const mark = callables.mark;
  try {
    const encoded = codec.encodeCall(args, kw);
    message.args = encoded.value;
    message.kw = encoded.kw;
    return frameEncoded(message, encoded);
  } catch (err) {
    callables.rollback(mark);
    throw err;
  }
}

/** Adds `x` and `f` to a message whose values are encoded, and frames it with the attachments and fds. */
function frameEncoded(message: Record<string, unknown>, encoded: EncodedValue): FrameChunks {
  if (encoded.tagged) message.x = 1;
  if (encoded.fds.length === 0) return encodeFrame(message, encoded.attachments);
  message.f = encoded.fds.length;
  try {
    return Object.assign(encodeFrame(message, encoded.attachments), { fds: encoded.fds, holds: encoded.holds });
  } catch (err) {
    for (const hold of encoded.holds) hold.release();
    throw err;
  }
}

export function isCallId(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value > 0;
}

function isFnId(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/** Checks a `call` header's shape; throws ProtocolError naming the bad field. */
export function checkCall(msg: Record<string, unknown>): asserts msg is Record<string, unknown> & CallMessage {
  if (!isCallId(msg.id)) throw new ProtocolError(`call: "id" must be a positive integer, got ${JSON.stringify(msg.id)}`);
  if (!Array.isArray(msg.args)) throw new ProtocolError(`call ${msg.id}: "args" must be a list`);
  if (msg.fn !== undefined) {
    if (!isFnId(msg.fn)) throw new ProtocolError(`call ${msg.id}: "fn" must be a callable id`);
  } else if (typeof msg.target !== "string" || typeof msg.method !== "string") {
    throw new ProtocolError(`call ${msg.id}: needs "target" and "method" strings, or "fn"`);
  }
  if (msg.kw !== undefined) checkKw(msg.kw, msg.id);
}

/** A call's `kw`: a JSON object whose names are Python identifiers (so none can read as a tag). */
function checkKw(kw: unknown, id: unknown): void {
  if (typeof kw !== "object" || kw === null || Array.isArray(kw)) {
    throw new ProtocolError(`call ${id}: "kw" must be an object of keyword arguments`);
  }
  for (const name in kw) {
    if (!isKeywordName(name)) throw new ProtocolError(`call ${id}: keyword argument name ${JSON.stringify(name).slice(0, 80)} in "kw" is not a Python identifier`);
  }
}

/** Checks a `release` header and returns its ids. */
export function checkRelease(msg: Record<string, unknown>): number[] {
  const fns = msg.fns;
  if (!Array.isArray(fns) || !fns.every(isFnId)) throw new ProtocolError('release: "fns" must be a list of callable ids');
  return fns;
}

/** The segment ids of a `release` header (optional field `segs`). */
export function checkReleasedSegments(msg: Record<string, unknown>): number[] {
  const segs = msg.segs;
  if (segs === undefined) return [];
  if (!Array.isArray(segs) || !segs.every(isFnId)) throw new ProtocolError('release: "segs" must be a list of segment ids');
  return segs;
}

/** The CUDA keys of a `release` header (optional field `cuda`; a key repeats once per opening freed). */
export function checkReleasedCuda(msg: Record<string, unknown>): string[] {
  const cuda = msg.cuda;
  if (cuda === undefined) return [];
  if (!Array.isArray(cuda) || !cuda.every((key) => typeof key === "string" && key.length <= 1024)) {
    throw new ProtocolError('release: "cuda" must be a list of CUDA tensor keys');
  }
  return cuda;
}

/** The number of fds a frame header announces (field `f`, default 0), at most `max` (limit maxFdsPerFrame). */
export function checkFdCount(msg: Record<string, unknown>, max = MAX_FRAME_FDS): number {
  const f = msg.f;
  if (f === undefined) return 0;
  if (typeof f !== "number" || !Number.isSafeInteger(f) || f < 0) {
    throw new ProtocolError(`"f" must be a count of file descriptors, got ${JSON.stringify(f).slice(0, 40)}`);
  }
  if (f > max) throw overLimit("maxFdsPerFrame", "file descriptors announced by a frame", f, max);
  return f;
}

/** Checks an `error` header's error object. */
export function checkWireError(value: unknown, id: number): WireError {
  const wire = value as Partial<WireError> | null;
  if (typeof wire !== "object" || wire === null || typeof wire.type !== "string" || typeof wire.message !== "string"
    || (wire.traceback !== undefined && typeof wire.traceback !== "string")
    || (wire.module !== undefined && typeof wire.module !== "string")) {
    throw new ProtocolError(`error ${id}: "error" must be an object with "type" and "message" strings`);
  }
  return wire as WireError;
}
