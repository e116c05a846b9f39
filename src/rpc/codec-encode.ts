// Encoding walk: copies only the parts of a value that need tags; refuses what the wire cannot carry.

import { closeWhenSent, writeMemfd } from "./bytes-fd.js";
import type { AnyFunction, CodecParts, EncodeContext, EncodedValue, FdHold } from "./value-kind.js";
import { Kwargs } from "./kwargs.js";
import { isStreamSource } from "./stream-producer.js";

/** Nesting limit in both directions: deeper values are refused (on send) or a protocol error (on receive). */
export const MAX_DEPTH = 1000;

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = -MAX_SAFE;

/** A refusal on its way up the walk; the path to the offending value is collected as it goes. */
class Refusal extends TypeError {
  readonly what: string;
  readonly path: string[] = [];
  /** What to send instead, said after the path. */
  readonly hint: string | undefined;
  constructor(what: string, hint?: string) {
    super(what);
    this.what = what;
    this.hint = hint;
  }
}

/** Per-call state; also the context handed to value kinds. */
class EncodeState implements EncodeContext {
  attachments: Uint8Array[] | undefined;
  fds: number[] | undefined;
  holds: FdHold[] | undefined;
  tagged = false;
  /** `callId`: the frame is call `callId`, whose answer brings pooled memfds back (bytes-pool.ts). */
  constructor(
    readonly codec: CodecParts,
    readonly callId?: number,
  ) {}

  addFd(fd: number, hold?: FdHold): number {
    this.tagged = true;
    const fds = (this.fds ??= []);
    const known = fds.indexOf(fd);
    if (known >= 0) return known;
    if (hold !== undefined) {
      hold.retain();
      (this.holds ??= []).push(hold);
    }
    return fds.push(fd) - 1;
  }

  /** Lets go of the holds taken so far (the encode failed, or the fds were sent). */
  releaseHolds(): void {
    for (const hold of this.holds ?? []) hold.release();
    this.holds = undefined;
  }

  attach(bytes: Uint8Array): number {
    this.tagged = true;
    (this.attachments ??= []).push(bytes);
    return this.attachments.length - 1;
  }

  encode(value: unknown): unknown {
    return walk(value, this, 0);
  }

  /** Bytes as an attachment (copied only by the socket write), or from the threshold on as a sealed memfd. */
  bytes(bytes: Uint8Array): unknown {
    const path = this.codec.bytesFd;
    if (path === undefined || bytes.byteLength < path.threshold) return { $bytes: this.attach(bytes) };
    const lent = this.callId === undefined ? undefined : path.pool?.lend(bytes, this.callId);
    if (lent !== undefined) return { $bytes: { fd: this.addFd(lent.fd, lent.hold), size: bytes.byteLength } };
    const fd = writeMemfd(bytes, path.native);
    return { $bytes: { fd: this.addFd(fd, closeWhenSent(fd, path.native)), size: bytes.byteLength } };
  }
}

export function encodeValue(codec: CodecParts, value: unknown, root: string, callId?: number): EncodedValue {
  const state = new EncodeState(codec, callId);
  let encoded: unknown;
  try {
    encoded = walk(value, state, 0);
  } catch (err) {
    throw refused(err, state, root);
  }
  return {
    value: encoded,
    attachments: state.attachments ?? [],
    tagged: state.tagged,
    fds: state.fds ?? [],
    holds: state.holds ?? [],
  };
}

/**
 * Encodes a call's `args` and its keyword arguments `kw` (a plain object of checked names) into one frame's
 * attachments and fds, so that tags in either refer to the same frame. Refusals name `args[i]` or `kwargs.name`.
 */
export function encodeCallValues(
  codec: CodecParts,
  args: unknown[],
  kw: Record<string, unknown>,
  callId?: number,
): EncodedValue & { kw: unknown } {
  const state = new EncodeState(codec, callId);
  let encodedArgs: unknown;
  let encodedKw: unknown;
  let root = "args";
  try {
    encodedArgs = walk(args, state, 0);
    root = "kwargs";
    encodedKw = walk(kw, state, 0);
  } catch (err) {
    throw refused(err, state, root);
  }
  return {
    value: encodedArgs,
    kw: encodedKw,
    attachments: state.attachments ?? [],
    tagged: state.tagged,
    fds: state.fds ?? [],
    holds: state.holds ?? [],
  };
}

/** Lets go of the holds a failed encode took; a Refusal becomes the TypeError that says where the value sits. */
function refused(err: unknown, state: EncodeState, root: string): unknown {
  state.releaseHolds();
  if (!(err instanceof Refusal)) return err;
  return new TypeError(
    `cannot send ${err.what} at ${root}${shortPath(err.path.reverse())}${err.hint ? `: ${err.hint}` : ""}`,
  );
}

/** A path of at most 8 steps: a circular value's is a thousand (`.self.self...`), which says nothing more. */
function shortPath(steps: string[]): string {
  if (steps.length <= 8) return steps.join("");
  return `${steps.slice(0, 4).join("")}…(${steps.length - 6} more steps)…${steps.slice(-2).join("")}`;
}

function walk(value: unknown, state: EncodeState, depth: number): unknown {
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      if (Number.isFinite(value)) return value;
      state.tagged = true;
      return { $float: Number.isNaN(value) ? "nan" : value > 0 ? "inf" : "-inf" };
    case "undefined":
      return null;
    case "bigint":
      if (value >= MIN_SAFE && value <= MAX_SAFE) return Number(value);
      state.tagged = true;
      return { $int: value.toString() };
    case "function":
      state.tagged = true;
      return { $fn: state.codec.callables.exportFn(value as AnyFunction) };
    case "symbol":
      throw new Refusal(`a symbol (${String(value)})`);
    default:
      return value === null ? null : walkObject(value as object, state, depth + 1);
  }
}

function walkObject(value: object, state: EncodeState, depth: number): unknown {
  if (depth > MAX_DEPTH) throw new Refusal(`a value nested deeper than ${MAX_DEPTH} levels (is it circular?)`);
  if (Array.isArray(value)) return walkArray(value, state, depth);
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) {
    if (!(Symbol.asyncIterator in value)) return walkPlain(value as Record<string, unknown>, state, depth);
    return exportStream(value, state);
  }
  if (value instanceof Uint8Array) return state.bytes(value);
  if (value instanceof ArrayBuffer) return state.bytes(new Uint8Array(value));
  if (value instanceof Map) return walkMap(value, state, depth);
  for (const kind of state.codec.kinds) {
    if (kind.accepts(value)) {
      state.tagged = true;
      return { [kind.tag]: kind.encode(value, state) };
    }
  }
  if (isStreamSource(value)) return exportStream(value, state);
  // Only bytes travel as raw memory; other typed arrays are numbers with a shape, which is what a Tensor is.
  const typed = ArrayBuffer.isView(value) && !(value instanceof DataView);
  throw new Refusal(
    describe(value),
    typed
      ? "typed arrays other than Uint8Array travel as tensors: send Tensor.from(array, shape) (a numpy array in Python)"
      : undefined,
  );
}

/** An async iterable or generator travels as `$iter`: the receiver pulls its items with a stream call. */
function exportStream(value: object, state: EncodeState): unknown {
  const callables = state.codec.callables;
  if (callables.exportStream === undefined || !isStreamSource(value)) throw new Refusal(describe(value));
  state.tagged = true;
  return { $iter: callables.exportStream(value) };
}

function walkArray(value: unknown[], state: EncodeState, depth: number): unknown[] {
  let out: unknown[] | undefined;
  const n = value.length;
  let i = 0;
  try {
    for (; i < n; i++) {
      const item = value[i];
      const encoded = walk(item, state, depth);
      if (encoded !== item && out === undefined) out = value.slice(0, i);
      if (out !== undefined) out.push(encoded);
    }
  } catch (err) {
    if (err instanceof Refusal) err.path.push(`[${i}]`);
    throw err;
  }
  return out ?? value;
}

function walkPlain(value: Record<string, unknown>, state: EncodeState, depth: number): unknown {
  let out: Record<string, unknown> | undefined;
  let count = 0;
  let first = "";
  let key = "";
  try {
    for (key in value) {
      if (count++ === 0) first = key;
      const item = value[key];
      const encoded = walk(item, state, depth);
      if (encoded !== item && out === undefined) out = copyUntil(value, key);
      if (out !== undefined) setOwn(out, key, encoded);
    }
  } catch (err) {
    if (err instanceof Refusal) err.path.push(/^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`);
    throw err;
  }
  if (count === 1 && first.charCodeAt(0) === 36 /* $ */) {
    // A lone "$" key would read as a tag: send the object as a one-entry mapping instead.
    state.tagged = true;
    return { $map: [[first, (out ?? value)[first]]] };
  }
  return out ?? value;
}

function walkMap(value: Map<unknown, unknown>, state: EncodeState, depth: number): unknown {
  state.tagged = true;
  const entries: unknown[] = [];
  for (const [k, v] of value) {
    if (typeof k === "object" && k !== null) throw new Refusal(`a Map key that is ${describe(k)}`);
    try {
      entries.push([walk(k, state, depth), walk(v, state, depth)]);
    } catch (err) {
      if (err instanceof Refusal) err.path.push(`.get(${typeof k === "string" ? JSON.stringify(k) : String(k)})`);
      throw err;
    }
  }
  return { $map: entries };
}

/** A shallow copy of `value` holding the keys that come before `stop`. */
function copyUntil(value: Record<string, unknown>, stop: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key in value) {
    if (key === stop) break;
    setOwn(out, key, value[key]);
  }
  return out;
}

/** Assigns an own property, also for the key "__proto__" (which plain assignment would treat as the prototype). */
export function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === "__proto__") {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    target[key] = value;
  }
}

/** Names a value's type for a refusal message: "a Date", "a Set", "an instance of class Foo". */
function describe(value: object): string {
  if (value instanceof Kwargs) return "kwargs(...) (only the last argument of a call may be keyword arguments)";
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  if (typeof name !== "string" || name === "" || name === "Object") return "an object with a custom prototype";
  const builtin = Object.prototype.toString.call(value).slice(8, -1);
  if (builtin !== name) return `an instance of class ${name}`;
  return `${/^[AEIOU]/.test(name) ? "an" : "a"} ${name}`;
}
