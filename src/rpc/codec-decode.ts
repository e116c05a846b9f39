// Decoding walk: replaces tags in a freshly parsed header value, in place; malformed tags are protocol errors.

import { ProtocolError } from "../errors.js";
import { readLentMemfd, readMemfd } from "./bytes-fd.js";
import type { CodecParts, DecodeContext } from "./value-kind.js";
import { MAX_DEPTH, setOwn } from "./codec-encode.js";

/** Longest `$int` accepted, in characters (Python's default int/str limit is 4300 digits). */
export const MAX_INT_DIGITS = 4300;

const INT_PATTERN = /^-?[0-9]+$/;

class DecodeState implements DecodeContext {
  #fds: number[];
  /** Every fd of the frame, open until finish(): bytes are read from them, whoever owns them. */
  readonly #frameFds: readonly number[];
  /** Bytes read from memfds so far in this frame (bounded like a frame's attachments). */
  #fdBytes = 0;
  readonly #states = new Map<object, { state: unknown; close: (state: never) => void }>();

  constructor(
    readonly codec: CodecParts,
    readonly attachments: readonly Uint8Array[],
    fds: readonly number[],
  ) {
    this.#fds = [...fds];
    this.#frameFds = this.#fds.slice();
  }

  takeFds(): number[] {
    const fds = this.#fds;
    this.#fds = [];
    return fds;
  }

  frameState<T>(key: object, make: () => T, close: (state: T) => void): T {
    const known = this.#states.get(key);
    if (known !== undefined) return known.state as T;
    const state = make();
    this.#states.set(key, { state, close: close as (state: never) => void });
    return state;
  }

  /** Closes the value kinds' frame states and the fds nobody took; the first failure is thrown after all ran. */
  finish(closeFd: ((fd: number) => void) | undefined): void {
    let failure: unknown;
    for (const { state, close } of this.#states.values()) {
      try {
        close(state as never);
      } catch (err) {
        failure ??= err;
      }
    }
    this.#states.clear();
    for (const fd of this.takeFds()) {
      try {
        closeFd?.(fd);
      } catch (err) {
        failure ??= err;
      }
    }
    if (failure !== undefined) throw failure;
  }

  attachment(index: unknown): Uint8Array {
    if (typeof index !== "number" || !Number.isInteger(index) || index < 0 || index >= this.attachments.length) {
      throw new ProtocolError(
        `attachment index ${JSON.stringify(index)} is not one of the frame's ${this.attachments.length}`,
      );
    }
    return this.attachments[index]!;
  }

  decode(value: unknown): unknown {
    return walk(value, this, 0);
  }

  /**
   * `{"$bytes": {"fd": i, "size": n}}`: n bytes of the frame's fd i (a sealed memfd, mapped or copied);
   * `{"$bytes": {"fd": i, "size": n, "lent": k}}`: a copy of n bytes of the extension's pooled memfd number k,
   * which goes back to it once read.
   */
  bytesFromFd(payload: object): Uint8Array {
    const path = this.codec.bytesFd;
    if (path === undefined)
      throw new ProtocolError(
        `malformed $bytes ${preview(payload)}: bytes by fd need an fd channel, which this connection has not`,
      );
    const { fd, size, lent, ...rest } = payload as { fd?: unknown; size?: unknown; lent?: unknown };
    const lentOk = lent === undefined || (path.returnLent !== undefined && isLentNumber(lent));
    if (
      Object.keys(rest).length > 0 ||
      !lentOk ||
      typeof fd !== "number" ||
      !Number.isInteger(fd) ||
      fd < 0 ||
      fd >= this.#frameFds.length ||
      typeof size !== "number" ||
      !Number.isSafeInteger(size) ||
      size < 0
    ) {
      const lentField = path.returnLent === undefined ? "" : ', "lent"?: a pooled memfd number';
      throw new ProtocolError(
        `malformed $bytes ${preview(payload)}: expected {"fd": one of the frame's ${this.#frameFds.length} fds, "size": bytes${lentField}}`,
      );
    }
    this.#fdBytes += size;
    if (this.#fdBytes > path.maxBytes) {
      throw new ProtocolError(
        `bytes by fd in one frame: ${this.#fdBytes} exceeds the limit maxFrameBytes = ${path.maxBytes}`,
      );
    }
    if (lent === undefined) return readMemfd(this.#frameFds[fd]!, size, path.native);
    const bytes = readLentMemfd(this.#frameFds[fd]!, size, path.native);
    path.returnLent!(lent as number);
    return bytes;
  }
}

/**
 * Decodes several values of one frame (a call's `args` and `kw`) with one state, so that they share the frame's
 * fds and value-kind states; each is a root of its own (depth counts from 0). Replaces the entries of `values`.
 */
export function decodeValues(
  codec: CodecParts,
  values: unknown[],
  attachments: readonly Uint8Array[],
  fds: readonly number[] = [],
  closeFd?: (fd: number) => void,
): unknown[] {
  const state = new DecodeState(codec, attachments, fds);
  try {
    for (let i = 0; i < values.length; i++) values[i] = walk(values[i], state, 0);
    state.finish(closeFd);
    return values;
  } catch (err) {
    throw failed(err, state, closeFd);
  }
}

/** Closes what a failed decode held; returns the error to throw (a RangeError becomes a ProtocolError). */
function failed(err: unknown, state: DecodeState, closeFd: ((fd: number) => void) | undefined): unknown {
  try {
    state.finish(closeFd);
  } catch {
    // the decode error says more
  }
  if (err instanceof RangeError) return new ProtocolError(`value cannot be decoded: ${err.message}`, { cause: err });
  return err;
}

function walk(value: unknown, state: DecodeState, depth: number): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (++depth > MAX_DEPTH) throw new ProtocolError(`value nested deeper than ${MAX_DEPTH} levels`);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (typeof item === "object" && item !== null) value[i] = walk(item, state, depth);
    }
    return value;
  }
  const record = value as Record<string, unknown>;
  let count = 0;
  let first = "";
  for (const key in record) {
    if (count++ === 0) first = key;
    else break;
  }
  if (count === 1 && first.charCodeAt(0) === 36 /* $ */) return decodeTag(first, record[first], state, depth);
  for (const key in record) {
    const item = record[key];
    if (typeof item === "object" && item !== null) {
      const decoded = walk(item, state, depth);
      if (decoded !== item) setOwn(record, key, decoded);
    }
  }
  return record;
}

function decodeTag(tag: string, payload: unknown, state: DecodeState, depth: number): unknown {
  switch (tag) {
    case "$bytes":
      return typeof payload === "object" && payload !== null && !Array.isArray(payload)
        ? state.bytesFromFd(payload)
        : state.attachment(payload);
    case "$int":
      if (typeof payload !== "string" || payload.length > MAX_INT_DIGITS + 1 || !INT_PATTERN.test(payload)) {
        throw new ProtocolError(
          `malformed $int ${preview(payload)}: expected a decimal string of at most ${MAX_INT_DIGITS} digits`,
        );
      }
      return BigInt(payload);
    case "$float":
      if (payload === "nan") return NaN;
      if (payload === "inf") return Infinity;
      if (payload === "-inf") return -Infinity;
      throw new ProtocolError(`malformed $float ${preview(payload)}: expected "nan", "inf" or "-inf"`);
    case "$fn":
      if (typeof payload !== "number" || !Number.isSafeInteger(payload) || payload < 0) {
        throw new ProtocolError(`malformed $fn ${preview(payload)}: expected a callable id`);
      }
      return state.codec.callables.importFn(payload);
    case "$map":
      return decodeMap(payload, state, depth);
    case "$iter":
      // Streams flow from the host into an extension only: the host never pulls from an extension's iterable.
      throw new ProtocolError("a $iter value (a stream) may only be sent by the host");
    default: {
      const kind = state.codec.byTag.get(tag);
      if (kind === undefined) throw new ProtocolError(`unknown tag ${JSON.stringify(tag)}`);
      return kind.decode(payload, state);
    }
  }
}

function decodeMap(payload: unknown, state: DecodeState, depth: number): Record<string, unknown> {
  if (!Array.isArray(payload)) throw new ProtocolError(`malformed $map ${preview(payload)}: expected a list of pairs`);
  const out: Record<string, unknown> = {};
  for (const pair of payload) {
    if (!Array.isArray(pair) || pair.length !== 2) {
      throw new ProtocolError(`malformed $map entry ${preview(pair)}: expected [key, value]`);
    }
    setOwn(out, keyString(walk(pair[0], state, depth)), walk(pair[1], state, depth));
  }
  return out;
}

/** Mapping keys become strings: numbers, bigints and booleans as String() does, lists as JSON. */
function keyString(key: unknown): string {
  if (typeof key === "string") return key;
  if (Array.isArray(key)) return JSON.stringify(key, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
  return String(key);
}

/** A pooled memfd's number: a positive integer the extension chose (it only ever comes back to it). */
function isLentNumber(value: unknown): boolean {
  return typeof value === "number" && Number.isInteger(value) && value > 0 && value <= 0x7fffffff;
}

function preview(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
