// The hot messages' headers as text: a call or result whose values need no tag skips the codec walk and the objects.

/**
 * JSON of `values` when each one is a string, a boolean, a finite number or null (what the codec sends unchanged,
 * so the text is the one the generic path would produce), else undefined: the caller takes the generic path.
 */
export function plainListJson(values: readonly unknown[]): string | undefined {
  let json = "[";
  for (let i = 0; i < values.length; i++) {
    const item = plainJson(values[i]);
    if (item === undefined) return undefined;
    json += i === 0 ? item : "," + item;
  }
  return json + "]";
}

/** JSON of one result `value` under the same rule; undefined travels as null, as the codec sends it. */
export function plainValueJson(value: unknown): string | undefined {
  return value === undefined ? "null" : plainJson(value);
}

/**
 * JSON.stringify's text for a plain value, written here where that needs no call into it: with the host and an
 * extension sharing a CPU, its C++ is cold at every call (0.6 µs a small call, bench/README.md, session 16).
 */
function plainJson(value: unknown): string | undefined {
  switch (typeof value) {
    case "number":
      return Number.isFinite(value) ? String(value) : undefined; // a finite number's JSON is its ToString
    case "boolean":
      return value ? "true" : "false";
    case "string":
      return value.length <= SHORT_STRING && needsNoEscape(value) ? `"${value}"` : JSON.stringify(value);
    case "object":
      return value === null ? "null" : undefined;
    default:
      return undefined;
  }
}

/** Strings up to this long are checked here for characters JSON escapes; longer ones go to JSON.stringify. */
const SHORT_STRING = 64;

/** No quote, backslash, control character or surrogate (JSON.stringify escapes the lone ones) in `text`. */
function needsNoEscape(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return false;
  }
  return true;
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
