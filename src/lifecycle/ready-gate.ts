// Calls made while an extension restarts wait here: each with its own bound (queue timeout, call timeout, signal),
// released when it is ready again or rejected when it will not be.

import { CallAbortedError } from "../errors.js";

interface Waiter {
  resolve: () => void;
  reject: (error: Error) => void;
}

export class ReadyGate {
  private readonly waiters = new Set<Waiter>();

  get size(): number {
    return this.waiters.size;
  }

  /** Resolves once `open()` runs; rejects after `timeoutMs`, on `signal`, or with `close()`'s error. */
  wait(timeoutMs: number, signal: AbortSignal | undefined, what: string, cause: Error | undefined): Promise<void> {
    if (signal?.aborted) return Promise.reject(new CallAbortedError(`${what} was aborted`, { cause: signal.reason }));
    return new Promise<void>((resolve, reject) => {
      const finish = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.waiters.delete(waiter);
      };
      const waiter: Waiter = {
        resolve: () => {
          finish();
          resolve();
        },
        reject: (error) => {
          finish();
          reject(error);
        },
      };
      const timer = setTimeout(
        () =>
          waiter.reject(
            new CallAbortedError(`${what} timed out after ${timeoutMs} ms waiting for the extension to restart`, {
              timedOut: true,
              cause,
            }),
          ),
        timeoutMs,
      );
      const onAbort = () => waiter.reject(new CallAbortedError(`${what} was aborted`, { cause: signal?.reason }));
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters.add(waiter);
    });
  }

  /** The extension is ready: every waiter goes on. */
  open(): void {
    for (const waiter of [...this.waiters]) waiter.resolve();
  }

  /** It will not be ready again: every waiter rejects with `error`. */
  close(error: Error): void {
    for (const waiter of [...this.waiters]) waiter.reject(error);
  }
}
