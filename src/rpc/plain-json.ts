// The hot messages' headers as text: a call or result whose values need no tag skips the codec walk and the objects.

/**
 * JSON of `values` when each one is a string, a boolean, a finite number or null (what the codec sends unchanged,
 * so the text is the one the generic path would produce), else undefined: the caller takes the generic path.
 */
export function plainListJson(values: readonly unknown[]): string | undefined {
  for (let i = 0; i < values.length; i++) {
    if (!isPlain(values[i])) return undefined;
  }
  return JSON.stringify(values);
}

/** JSON of one result `value` under the same rule; undefined travels as null, as the codec sends it. */
export function plainValueJson(value: unknown): string | undefined {
  if (value === undefined) return "null";
  return isPlain(value) ? JSON.stringify(value) : undefined;
}

function isPlain(value: unknown): boolean {
  switch (typeof value) {
    case "string":
    case "boolean":
      return true;
    case "number":
      return Number.isFinite(value);
    case "object":
      return value === null;
    default:
      return false;
  }
}

/**
 * The text a call header has after its id, up to its args: `,"target":...,"method":...,"args":` or `,"fn":N,"args":`.
 * The keys come in the order the generic path writes them, so both paths put the same bytes on the wire.
 */
export function callKeysJson(target: string | undefined, method: string | undefined, fnId: number | undefined): string {
  return fnId === undefined
    ? `,"target":${JSON.stringify(target)},"method":${JSON.stringify(method)},"args":`
    : `,"fn":${fnId},"args":`;
}

/** How a lone plain result's header begins, and the key between its id and its value (plain-runs.ts writes them). */
const RESULT_HEAD = '{"k":"result","id":';
const VALUE_KEY = ',"value":';
/** How every tag's key begins: a header holding it is not a plain result (a plain string with a `$` first goes too). */
const TAG_MARK = '"$';
/** Digits of the largest id read here: 15 stay below 2^53, so every such id is a safe integer. */
const MAX_ID_DIGITS = 15;

/**
 * The id and value of a header that is exactly `{"k":"result","id":N,"value":V}` (a plain result, compact, no other
 * key), else undefined, and the general parser decides: it accepts such a header with the same id and value, so
 * nothing is accepted here that it would refuse. V parses alone only when no key follows it.
 */
export function loneResult(text: string): { id: number; value: unknown } | undefined {
  if (!text.startsWith(RESULT_HEAD) || text.charCodeAt(text.length - 1) !== 125 /* } */) return undefined;
  const first = RESULT_HEAD.length;
  let at = first;
  let id = 0;
  for (; at < text.length && at - first <= MAX_ID_DIGITS; at++) {
    const digit = text.charCodeAt(at) - 48;
    if (digit < 0 || digit > 9) break;
    id = id * 10 + digit;
  }
  if (id === 0 || at - first > MAX_ID_DIGITS || text.charCodeAt(first) === 48 || !text.startsWith(VALUE_KEY, at))
    return undefined;
  // A tagged value (a tensor, bytes, a callable: `{"$tensor":...}`) has its flag key after it, so the value would not
  // parse alone: JSON.parse would throw, and a thrown SyntaxError costs 6 µs. A tag's key cannot hide in a string
  // (its quote would be escaped there), so no tagged header gets past this; a plain string starting with `$` goes too.
  if (text.includes(TAG_MARK, at)) return undefined;
  try {
    return { id, value: JSON.parse(text.slice(at + VALUE_KEY.length, -1)) };
  } catch {
    return undefined;
  }
}
