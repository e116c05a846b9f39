// Which extension a host function is running for: set around every incoming call, read by callingExtension().

import { AsyncLocalStorage } from "node:async_hooks";

/**
 * The one store of the caller's name. It holds no state of its own between calls: each incoming call runs inside
 * `runAsCaller`, and what the store returns follows the async context (awaits, timers, promise chains) of that call.
 */
const callers = new AsyncLocalStorage<string>();

/**
 * The name of the extension whose call the current host code is serving (a `provide()` service method, or a
 * JavaScript function handed to Python and called back), also after an `await` inside it; undefined outside
 * such a call. Read it synchronously in the service method or anywhere in its async continuation.
 */
export function callingExtension(): string | undefined {
  return callers.getStore();
}

/** Runs `fn` as the work of extension `name`: callingExtension() returns it there and in what `fn` starts. */
export function runAsCaller<T>(name: string, fn: () => T): T {
  return callers.run(name, fn);
}

/** Whether startCallerTracking ran: after the first time there is nothing to do. */
let tracking = false;

/**
 * Turns the store's tracking on now, before any call runs, rather than at the first incoming call. On Node 20 the
 * first use of an AsyncLocalStorage installs promise hooks for the whole process, and code V8 had already optimized
 * without them is thrown away and compiled again: done mid-traffic, that put the p99 of the next 2000 calls from
 * an extension to the host at 0.7-2.0 ms instead of 0.3-0.6 ms (bench/README.md, "Session 9").
 * `provide()` calls this, since a host that provides services will run incoming calls; so does handing a function
 * or an iterable to the other side (callables.ts), which it may call back or read.
 */
export function startCallerTracking(): void {
  if (tracking) return;
  tracking = true;
  callers.run("", () => undefined); // the one public way to enable the store; the old (empty) store is restored
}
