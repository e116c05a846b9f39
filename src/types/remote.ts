// Type-level view of an extension's methods from the host: Remote<Api>, comlink's shape.

import type { Kwargs } from "../rpc/kwargs.js";

/** The constraint of a declared API or event set: any interface or object type (`any` values admit interfaces). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- `unknown` values would not admit interfaces
export type Shape = Record<string, any>;

/** What an extension with no declared API offers: any method, any arguments, an unknown result. */
export type UntypedApi = Record<string, (...args: unknown[]) => unknown>;

/** A value as the host receives it: a function the extension returns arrives as a remote callable. */
export type RemoteValue<T> = T extends (...args: infer A) => infer R ? (...args: A) => Promise<Awaited<R>> : T;

/** Every leading part of the tuple `T` (`[]`, `[a]`, `[a, b]`, ...). */
type Prefixes<T extends unknown[], Acc extends unknown[] = []> =
  Acc | (T extends [infer H, ...infer R] ? Prefixes<R, [...Acc, H]> : never);
type AppendKwargs<P> = P extends unknown[] ? [...P, Kwargs] : never;

/**
 * The argument lists of a method taking `A`: `A` itself, or any list `A` accepts followed by a `kwargs()` marker
 * (`scale(x, kwargs({ factor: 3 }))` for `scale(x: number, factor?: number)`).
 */
export type ArgsWithKwargs<A extends unknown[]> =
  | A
  | (number extends A["length"]
      ? [...A, Kwargs]
      : AppendKwargs<Extract<Prefixes<Required<A>>, { length: A["length"] }>>);

/** What a generator method yields: `T` of an `AsyncIterable<T>` (async generator) or `Generator<T>`; never otherwise. */
export type Yielded<R> =
  R extends AsyncIterable<infer T> ? T : R extends Generator<infer T, unknown, unknown> ? T : never;

/**
 * One method seen from the host: same arguments (a trailing `kwargs()` marker allowed), the result promised; a
 * method declared as returning an `AsyncIterable<T>`/`AsyncGenerator<T>`/`Generator<T>` streams (`for await`).
 */
export type RemoteMethod<F> = F extends (...args: infer A) => infer R
  ? [Yielded<R>] extends [never]
    ? (...args: ArgsWithKwargs<A>) => Promise<RemoteValue<Awaited<R>>>
    : (...args: ArgsWithKwargs<A>) => AsyncIterableIterator<RemoteValue<Yielded<R>>>
  : never;

/** The names of `Api` whose values are methods: only methods can be called across the process boundary. */
export type MethodNames<Api> = {
  [K in keyof Api]-?: Api[K] extends (...args: never[]) => unknown ? K : never;
}[keyof Api];

/**
 * `Api` as `ext.proxy` offers it: every method returns a Promise of its (awaited) result; attributes that are not
 * methods are left out, since only methods are callable. `Remote<UntypedApi>` is the loose default.
 */
export type Remote<Api> = { readonly [K in MethodNames<Api>]: RemoteMethod<Api[K]> };
