// The hot reply read from its bytes: a frame that is exactly one plain result, `{"k":"result","id":N,"value":V}`.
//
// Why bytes: with the host and an extension sharing a CPU, every reply finds the C++ code behind Buffer#toString and
// JSON.parse cold again (the extension ran in between). Read in JavaScript, an int, true, false or null costs no call
// into either, about 1 µs less a small call there (bench/README.md, session 16); other values have only their own
// bytes decoded and parsed. Nothing is accepted here that the general parser (framing.ts, messages.ts) would read
// differently: whatever is not plainly this shape is declined, and the general path answers or refuses it.

import { RESULT_HEAD, VALUE_KEY } from "./plain-runs.js";

/** A lone result's call id and value. */
export interface LoneResult {
  readonly id: number;
  readonly value: unknown;
}

const HEAD = Buffer.from(RESULT_HEAD);
const VALUE_KEY_BYTES = Buffer.from(VALUE_KEY);
const NULL = Buffer.from("null");
const TRUE = Buffer.from("true");
const FALSE = Buffer.from("false");
/** How a header whose value holds tags ends, as both peers write it. */
const TAGGED_TAIL = Buffer.from(',"x":1}');
/** How every tag's key begins: a value holding it is tagged (it cannot hide in a string, its quote would be escaped). */
const TAG_MARK = Buffer.from('"$');
/** The most digits read here, in an id or an int value: 15 stay below 2^53, so every such number is exact. */
const MAX_DIGITS = 15;
const CLOSE = 0x7d; // }
const MINUS = 0x2d;
const ZERO = 0x30;
const NINE = 0x39;
const NOT_LITERAL = Symbol("not a literal");

/**
 * The id and value of the header in `data[start, end)` when it is exactly `{"k":"result","id":N,"value":V}` (compact,
 * no other key, N of at most 15 digits), else undefined. `data` may hold other frames around it: nothing outside the
 * range is read.
 */
export function loneResult(data: Buffer, start: number, end: number): LoneResult | undefined {
  if (data[end - 1] !== CLOSE || !bytesAt(data, start, HEAD, end)) return undefined;
  // A tagged value (a tensor's descriptor, ...) is flagged by an `x` key after it, last in the header as our peers
  // write it: such a reply is declined here at once, its bytes not searched for the tag below.
  if (end - start > TAGGED_TAIL.length && bytesAt(data, end - TAGGED_TAIL.length, TAGGED_TAIL, end)) return undefined;
  const idStart = start + HEAD.length;
  const idEnd = digitsEnd(data, idStart, Math.min(end, idStart + MAX_DIGITS + 1));
  const id = naturalOf(data, idStart, idEnd);
  // Zero, a leading zero, a sign or 16 digits and more: the general path decides.
  if (id <= 0 || !bytesAt(data, idEnd, VALUE_KEY_BYTES, end)) return undefined;
  const valueStart = idEnd + VALUE_KEY_BYTES.length;
  const valueEnd = end - 1;
  if (valueStart >= valueEnd) return undefined;
  const literal = literalOf(data, valueStart, valueEnd);
  if (literal !== NOT_LITERAL) return { id, value: literal };
  const valueBytes = data.subarray(valueStart, valueEnd);
  // A tagged value has its flag key after it, so it would not parse alone: JSON.parse would throw, and a thrown
  // SyntaxError costs 6 µs. A plain string that starts with `$` goes the general way too.
  if (valueBytes.includes(TAG_MARK)) return undefined;
  try {
    return { id, value: JSON.parse(valueBytes.toString("utf8")) };
  } catch {
    return undefined; // not one JSON value (a key after it, nothing, ...): the general path says what is wrong
  }
}

/** null, true, false or an int of at most 15 digits (no leading zero, not -0) spelt exactly by data[from, to). */
function literalOf(data: Buffer, from: number, to: number): unknown {
  switch (data[from]) {
    case 0x6e: // n
      return spelt(data, from, to, NULL) ? null : NOT_LITERAL;
    case 0x74: // t
      return spelt(data, from, to, TRUE) ? true : NOT_LITERAL;
    case 0x66: // f
      return spelt(data, from, to, FALSE) ? false : NOT_LITERAL;
  }
  const negative = data[from] === MINUS;
  const digitsStart = negative ? from + 1 : from;
  if (digitsEnd(data, digitsStart, to) !== to) return NOT_LITERAL;
  const n = naturalOf(data, digitsStart, to);
  if (n < 0 || (negative && n === 0)) return NOT_LITERAL;
  return negative ? -n : n;
}

/** Where the run of ASCII digits that starts at `at` ends, looking no further than `limit`. */
function digitsEnd(data: Buffer, at: number, limit: number): number {
  while (at < limit) {
    const c = data[at]!;
    if (c < ZERO || c > NINE) break;
    at++;
  }
  return at;
}

/** The number the digits data[from, to) spell, or -1 when there are none, more than 15 or a leading zero. */
function naturalOf(data: Buffer, from: number, to: number): number {
  const count = to - from;
  if (count === 0 || count > MAX_DIGITS || (count > 1 && data[from] === ZERO)) return -1;
  let n = 0;
  for (let i = from; i < to; i++) n = n * 10 + (data[i]! - ZERO);
  return n;
}

function spelt(data: Buffer, from: number, to: number, word: Uint8Array): boolean {
  return to - from === word.length && bytesAt(data, from, word, to);
}

/** Whether `data` holds the bytes of `expected` at `at`, before `limit` (false when they would run past it). */
function bytesAt(data: Buffer, at: number, expected: Uint8Array, limit: number): boolean {
  if (at + expected.length > limit) return false;
  for (let i = 0; i < expected.length; i++) if (data[at + i] !== expected[i]) return false;
  return true;
}
