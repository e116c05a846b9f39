// Keyword arguments of a call: the kwargs() marker, the rule for their names, and taking them off an argument list.

/**
 * A Python identifier, as `str.isidentifier()` decides (XID_Start or "_", then XID_Continue): the only names a
 * call's `kw` may hold. Both sides hold identifier characters stable across Unicode versions; only characters
 * assigned after the older side's Unicode tables could be judged differently.
 */
const IDENTIFIER = /^[\p{XID_Start}_]\p{XID_Continue}*$/u;

export function isKeywordName(name: unknown): name is string {
  return typeof name === "string" && IDENTIFIER.test(name);
}

/**
 * Keyword arguments made by `kwargs()`. Passed as the last argument of a call (`ext.proxy.mean(x, kwargs({ axis: 0 }))`,
 * `ext.call("mean", [x, kwargs({ axis: 0 })])`, or a remote callable), they travel as the call's `kw` and Python
 * receives them as `**kw`.
 */
export class Kwargs {
  /** The names and values, checked and copied when the marker was made. */
  readonly values: Readonly<Record<string, unknown>>;

  /** @internal Use `kwargs()`. */
  constructor(values: Record<string, unknown>) {
    this.values = values;
  }
}

/**
 * Marks `values` as keyword arguments: `ext.proxy.mean(x, kwargs({ axis: 0 }))` calls `mean(x, axis=0)` in Python.
 * Only the last argument of a call may be one. Names must be Python identifiers; values are sent like any
 * argument (tensors, bytes, callables and nested values included). Throws TypeError for anything else.
 */
export function kwargs(values: Record<string, unknown>): Kwargs {
  return new Kwargs(checkKwargs(values, "kwargs()"));
}

/** Checks that `values` is a plain object of Python-identifier names and returns a shallow copy; TypeError names `what`. */
export function checkKwargs(values: unknown, what: string): Record<string, unknown> {
  const proto: unknown = typeof values === "object" && values !== null ? Object.getPrototypeOf(values) : undefined;
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError(`${what} takes a plain object of keyword arguments, got ${describe(values)}`);
  }
  const copy: Record<string, unknown> = {};
  for (const name of Object.keys(values as object)) {
    if (!isKeywordName(name))
      throw new TypeError(`${what}: keyword argument name ${JSON.stringify(name)} is not a Python identifier`);
    Object.defineProperty(copy, name, {
      value: (values as Record<string, unknown>)[name],
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return copy;
}

/**
 * Splits a call's keyword arguments off: a `kwargs()` marker as the last of `args`, or `fromOptions` (a call's
 * `kwargs` option), not both. Returns undefined when there are none (an empty set counts as none), so a plain call
 * allocates nothing here.
 */
export function takeKwargs(
  args: unknown[],
  fromOptions: Record<string, unknown> | undefined,
): { args: unknown[]; kw: Record<string, unknown> | undefined } | undefined {
  const n = args.length;
  const last = n === 0 ? undefined : args[n - 1];
  if (last instanceof Kwargs) {
    if (fromOptions !== undefined)
      throw new TypeError("keyword arguments were given twice: by kwargs() and by options.kwargs");
    return { args: args.slice(0, n - 1), kw: Object.keys(last.values).length > 0 ? last.values : undefined };
  }
  if (fromOptions === undefined) return undefined;
  const kw = checkKwargs(fromOptions, "options.kwargs");
  return Object.keys(kw).length > 0 ? { args, kw } : undefined;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value !== "object") return typeof value;
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === "string" && name !== "" ? `an instance of ${name}` : "an object with a custom prototype";
}
