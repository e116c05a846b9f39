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
