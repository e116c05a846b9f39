// The runtime side of `ext.proxy`: a Proxy that turns method names into calls and keeps every name JavaScript
// itself probes (then, toJSON, toString, inspect, symbols, ...) local, so that no probe becomes a remote call.

import { inspect } from "node:util";

/**
 * Names that JavaScript, Node and common libraries look up on any object they are handed: `await` (then),
 * JSON.stringify (toJSON), string conversion (toString, valueOf), and the names every object inherits. A Python
 * method of one of these names stays callable through `ext.call(name, args)`.
 */
const LOCAL_NAMES: ReadonlySet<string> = new Set([
  "then",
  "catch",
  "finally",
  "toJSON",
  "inspect",
  "asymmetricMatch",
  "$$typeof",
  "nodeType",
  "prototype",
  ...Object.getOwnPropertyNames(Object.prototype),
]);

/** Whether `key` is answered locally by the proxy, never sent to the extension. */
export function isLocalKey(key: string | symbol): boolean {
  return typeof key === "symbol" || LOCAL_NAMES.has(key);
}

/**
 * A proxy whose string properties are methods of the extension `name`: `proxy.mean(x)` is `call("mean", [x])`, and
 * for a generator method `proxy.generate(p)` is `stream("generate", [p])`.
 * `String(proxy)`, `JSON.stringify(proxy)` (`{}`), `console.log(proxy)` and `await proxy` (the proxy itself) are
 * answered here; `methods()` is read at each inspection, so a restart's method list shows.
 */
/** How the proxy streams: the names of generator methods, and the stream call for them. */
export interface ProxyStreams {
  streams: () => readonly string[];
  stream: (method: string, args: unknown[]) => AsyncIterable<unknown>;
}

export function makeRemoteProxy(
  name: string,
  methods: () => readonly string[],
  call: (method: string, args: unknown[]) => Promise<unknown>,
  streaming?: ProxyStreams,
): object {
  const label = `[Remote extension "${name}"]`;
  const target: object = Object.defineProperties(
    {},
    {
      toString: { value: () => label },
      [Symbol.toStringTag]: { value: "Remote" },
      [Symbol.toPrimitive]: { value: () => label },
      // util.inspect looks through a Proxy at its target: this is what console.log(ext.proxy) prints.
      [inspect.custom]: { value: () => `${label} { ${methods().join(", ")} }` },
    },
  );
  return new Proxy(target, {
    get(object, key) {
      if (isLocalKey(key)) return Reflect.get(object, key);
      // A generator method (the ready message's `streams`) returns an AsyncIterable instead of a Promise.
      return (...args: unknown[]) =>
        streaming?.streams().includes(key as string)
          ? streaming.stream(key as string, args)
          : call(key as string, args);
    },
    has(object, key) {
      return isLocalKey(key) ? Reflect.has(object, key) : methods().includes(key as string);
    },
    set() {
      return false; // a method of the extension cannot be replaced from the host
    },
  });
}
