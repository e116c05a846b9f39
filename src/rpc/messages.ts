// The wire's one gate: parseMessage checks every received header; the encoders frame outgoing values.

import { ProtocolError } from "../errors.js";
import type { Codec } from "./codec.js";
import type { CallableTables } from "./callables.js";
import { attachmentLengths, encodeFrameText } from "./framing.js";
import { isKeywordName } from "./kwargs.js";
import { overLimit } from "./limits.js";
import {
  MAX_BATCH,
  MAX_STREAM_WINDOW,
  type BatchedMessage,
  type BatchMessage,
  type CallMessage,
  type CallsMessage,
  type ResultsMessage,
  type ControlMessage,
  type Message,
  type WireError,
} from "./protocol.js";
import type { EncodedValue, FdHold } from "./value-kind.js";

/** A frame's chunks; `fds` (with the holds that keep them open) go by the fd channel just before them. */
export type FrameChunks = Buffer[] & { fds?: number[]; holds?: FdHold[] };

/** Most fds one frame may announce in its header field `f` when no limit is given (limits.ts has the default). */
export const MAX_FRAME_FDS = 4096;

/** Kinds whose fields the owner reads (the handshake checks hello and ready); here only their kind is checked. */
const CONTROL_KINDS: ReadonlySet<string> = new Set<ControlMessage["k"]>([
  "hello",
  "init",
  "ready",
  "fatal",
  "shutdown",
]);

/**
 * Checks a received header and returns it as the message it is: ids, callable ids, names, `args`, `kw`, error
 * objects, release lists and the fd count `f` (at most `maxFds`). A violation is a ProtocolError naming the field.
 */
export function parseMessage(header: unknown, maxFds = MAX_FRAME_FDS): Message & { f?: number } {
  if (typeof header !== "object" || header === null || Array.isArray(header))
    throw new ProtocolError("a frame header must be an object");
  const msg = header as Record<string, unknown>;
  fdCount(msg.f, maxFds);
  switch (msg.k) {
    case "call":
      return parseCall(msg);
    case "result":
      callId(msg, "result");
      return msg as unknown as Message;
    case "error":
      msg.error = wireError(msg.error, callId(msg, "error"));
      return msg as unknown as Message;
    case "cancel":
    case "item":
      callId(msg, msg.k);
      return msg as unknown as Message;
    case "credit": {
      const id = callId(msg, "credit");
      if (!isId(msg.n, 1) || msg.n > MAX_STREAM_WINDOW)
        throw new ProtocolError(`credit ${id}: "n" must be a count of items from 1 to ${MAX_STREAM_WINDOW}`);
      return msg as unknown as Message;
    }
    case "release":
      idList(msg.fns, 'release: "fns" must be a list of callable ids', false);
      idList(msg.segs, 'release: "segs" must be a list of segment ids', true);
      idList(msg.cudaExports, 'release: "cudaExports" must be a list of CUDA export ids', true);
      idList(msg.bytes, 'release: "bytes" must be a list of pooled memfd numbers', true);
      if (
        msg.cuda !== undefined &&
        !(Array.isArray(msg.cuda) && msg.cuda.every((key) => typeof key === "string" && key.length <= 1024))
      ) {
        throw new ProtocolError('release: "cuda" must be a list of CUDA tensor keys');
      }
      return msg as unknown as Message;
    case "event":
      if (typeof msg.name !== "string") throw new ProtocolError('event: "name" must be a string');
      return msg as unknown as Message;
    case "batch":
      return parseBatch(msg);
    case "calls":
      return parseCalls(msg);
    case "results":
      return parseResults(msg);
    default:
      if (typeof msg.k === "string" && CONTROL_KINDS.has(msg.k)) return msg as unknown as Message;
      throw new ProtocolError(`unknown message kind ${JSON.stringify(msg.k)?.slice(0, 40)}`);
  }
}

/** Every message of a batch is checked before any is dispatched: a batch is refused whole. */
function parseBatch(msg: Record<string, unknown>): BatchMessage {
  const messages = msg.m;
  if (!Array.isArray(messages) || messages.length === 0 || messages.length > MAX_BATCH)
    throw new ProtocolError(`batch: "m" must be a list of 1 to ${MAX_BATCH} messages`);
  if ((msg.f !== undefined && msg.f !== 0) || msg.a !== undefined)
    throw new ProtocolError("batch: a batch frame carries no attachments or fds");
  for (const inner of messages) {
    if (typeof inner !== "object" || inner === null || Array.isArray(inner))
      throw new ProtocolError("batch: each message must be an object");
    const kind = (inner as Record<string, unknown>).k;
    if (kind !== "call" && kind !== "result" && kind !== "error")
      throw new ProtocolError(`batch: ${JSON.stringify(kind)?.slice(0, 40)} messages cannot be batched`);
    const fields = inner as Record<string, unknown>;
    if (fields.x !== undefined || fields.a !== undefined || fields.f !== undefined)
      throw new ProtocolError(`batch: a batched ${kind} carries no tags, attachments or fds`);
    parseMessage(inner, 0);
  }
  return msg as unknown as BatchMessage & { m: BatchedMessage[] };
}

/** A run of plain calls: `ids` and `args` side by side, no tags, attachments, fds, keywords, stream or callable. */
function parseCalls(msg: Record<string, unknown>): CallsMessage {
  if (typeof msg.target !== "string" || typeof msg.method !== "string")
    throw new ProtocolError('calls: needs "target" and "method" strings');
  plainRun(msg, "calls", "args", ["kw", "stream", "fn"]);
  if (!(msg.args as unknown[]).every((args) => Array.isArray(args)))
    throw new ProtocolError('calls: every entry of "args" must be a list');
  return msg as unknown as CallsMessage;
}

/** A run of plain results: `ids` and `values` side by side, no tags, attachments or fds. */
function parseResults(msg: Record<string, unknown>): ResultsMessage {
  plainRun(msg, "results", "values", []);
  return msg as unknown as ResultsMessage;
}

/** The checks a calls or results frame shares: `ids` beside the `entries` list, both of 1 to MAX_BATCH; no extras. */
function plainRun(msg: Record<string, unknown>, kind: string, entries: string, refused: readonly string[]): void {
  const ids = msg.ids;
  const list = msg[entries];
  if (
    !Array.isArray(ids) ||
    !Array.isArray(list) ||
    ids.length === 0 ||
    ids.length > MAX_BATCH ||
    ids.length !== list.length
  ) {
    throw new ProtocolError(
      `${kind}: "ids" and "${entries}" must be lists of 1 to ${MAX_BATCH} entries of the same length`,
    );
  }
  if (!ids.every((id) => isId(id, 1))) throw new ProtocolError(`${kind}: every id must be a positive integer`);
  for (const field of ["x", "a", "f", ...refused]) {
    if (msg[field] !== undefined)
      throw new ProtocolError(`${kind}: a run of plain messages carries no ${JSON.stringify(field)}`);
  }
}

function parseCall(msg: Record<string, unknown>): CallMessage {
  const id = callId(msg, "call");
  if (!Array.isArray(msg.args)) throw new ProtocolError(`call ${id}: "args" must be a list`);
  if (msg.fn !== undefined) {
    if (!isId(msg.fn, 0)) throw new ProtocolError(`call ${id}: "fn" must be a callable id`);
  } else if (typeof msg.target !== "string" || typeof msg.method !== "string") {
    throw new ProtocolError(`call ${id}: needs "target" and "method" strings, or "fn"`);
  }
  if (msg.stream !== undefined && (!isId(msg.stream, 1) || msg.stream > MAX_STREAM_WINDOW)) {
    throw new ProtocolError(`call ${id}: "stream" must be a window of items from 1 to ${MAX_STREAM_WINDOW}`);
  }
  if (msg.kw !== undefined) {
    const kw = msg.kw;
    if (typeof kw !== "object" || kw === null || Array.isArray(kw))
      throw new ProtocolError(`call ${id}: "kw" must be an object of keyword arguments`);
    for (const name in kw) {
      if (!isKeywordName(name))
        throw new ProtocolError(
          `call ${id}: keyword argument name ${JSON.stringify(name).slice(0, 80)} in "kw" is not a Python identifier`,
        );
    }
  }
  return msg as unknown as CallMessage;
}

function isId(value: unknown, least: 0 | 1): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= least;
}

/** The message's call id (a positive integer). */
function callId(msg: Record<string, unknown>, kind: string): number {
  if (!isId(msg.id, 1))
    throw new ProtocolError(`${kind}: "id" must be a positive integer, got ${JSON.stringify(msg.id)?.slice(0, 40)}`);
  return msg.id;
}

function idList(value: unknown, refusal: string, optional: boolean): void {
  if (optional && value === undefined) return;
  if (!Array.isArray(value) || !value.every((id) => isId(id, 0))) throw new ProtocolError(refusal);
}

/** The number of fds a frame header announces (field `f`, default 0), at most `max` (limit maxFdsPerFrame). */
function fdCount(f: unknown, max: number): void {
  if (f === undefined) return;
  if (!isId(f, 0))
    throw new ProtocolError(`"f" must be a count of file descriptors, got ${JSON.stringify(f)?.slice(0, 40)}`);
  if (f > max) throw overLimit("maxFdsPerFrame", "file descriptors announced by a frame", f, max);
}

function wireError(value: unknown, id: number): WireError {
  const wire = value as Partial<WireError> | null;
  if (
    typeof wire !== "object" ||
    wire === null ||
    typeof wire.type !== "string" ||
    typeof wire.message !== "string" ||
    (wire.traceback !== undefined && typeof wire.traceback !== "string") ||
    (wire.module !== undefined && typeof wire.module !== "string")
  ) {
    throw new ProtocolError(`error ${id}: "error" must be an object with "type" and "message" strings`);
  }
  return wire as WireError;
}

/** The messages whose value is encoded into one field. */
type ValueMessage =
  | { k: "result"; id: number }
  | { k: "event"; name: string }
  | { k: "item"; id: number }
  | { k: "call"; id: number; target?: string; method?: string; fn?: number; stream?: number };

/**
 * Frames `message` with `value` encoded into its field `key` (setting `x` when tags were produced); `root` names
 * the value in refusal messages. If the value cannot be sent, the callables it exported are forgotten and the
 * TypeError is thrown. With keyword arguments `kw` (a call), args and kw are encoded as one frame's values. `lendTo`:
 * the frame is that call's, answered by a `result` or `error` (its large bytes may ride in pooled memfds).
 */
export function encodeMessage(
  codec: Codec,
  callables: CallableTables,
  message: ValueMessage,
  key: "value" | "payload" | "args",
  value: unknown,
  root: string = key,
  kw?: Record<string, unknown>,
  lendTo?: number,
): FrameChunks {
  const mark = callables.mark;
  try {
    const encoded: EncodedValue & { kw?: unknown } =
      kw === undefined ? codec.encode(value, root, lendTo) : codec.encodeCall(value as unknown[], kw, lendTo);
    if (encoded.fds.length === 0) return frameWithValue(message, key, encoded, kw !== undefined);
    try {
      return Object.assign(frameWithValue(message, key, encoded, kw !== undefined), {
        fds: encoded.fds,
        holds: encoded.holds,
      });
    } catch (err) {
      for (const hold of encoded.holds) hold.release();
      throw err;
    }
  } catch (err) {
    callables.rollback(mark);
    throw err;
  }
}

/**
 * The frame of `message` with the encoded value in `key`, then `kw`, `x`, `f` and `a` as the other side reads them.
 * The header is written as text, field by field: a fresh object with a computed key and fields added one by one
 * took V8's slow paths (a runtime call for the key, a map transition per field), several µs a tensor call.
 */
function frameWithValue(
  message: ValueMessage,
  key: string,
  encoded: EncodedValue & { kw?: unknown },
  withKw: boolean,
): Buffer[] {
  let json = JSON.stringify(message).slice(0, -1); // `{"k":...` without its closing brace
  json = withField(json, key, JSON.stringify(encoded.value));
  if (withKw) json = withField(json, "kw", JSON.stringify(encoded.kw));
  if (encoded.tagged) json += ',"x":1';
  if (encoded.fds.length > 0) json += `,"f":${encoded.fds.length}`;
  if (encoded.attachments.length === 0) return encodeFrameText(json + "}", encoded.attachments, 0);
  const { lengths, total } = attachmentLengths(encoded.attachments);
  return encodeFrameText(`${json},"a":${JSON.stringify(lengths)}}`, encoded.attachments, total);
}

/** `json` (an object's text, still open) with `"name":valueJson` added; JSON.stringify's undefined is left out. */
function withField(json: string, name: string, valueJson: string | undefined): string {
  return valueJson === undefined ? json : `${json},"${name}":${valueJson}`;
}
