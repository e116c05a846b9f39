// Calls waiting on the host for a pool worker with room (`maxInFlight`): first come, first served, each still bound
// by its own signal and timeout while it waits.

import type { CallOptions } from "../config/options.js";
import { CallAbortedError } from "../errors.js";
import { isTimeoutReason } from "../rpc/peer-calls.js";

/** A call that found every worker full, and how to settle it once it has run (or could not). */
export interface WaitingCall {
  readonly method: string;
  readonly args: unknown[];
  readonly options: CallOptions;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
  /** Its timeout (its own, or the workers' default), counted from when it was made, waiting included. */
  readonly timeoutMs: number | undefined;
  /** performance.now() past which it has timed out, when it has a timeout. */
  readonly deadline: number | undefined;
}

/** A queue of calls; those that time out or are aborted while waiting leave it with a CallAbortedError. */
export class WaitingCalls {
  /** Each waiting call and what disarms its timer and abort listener; insertion order: the oldest first. */
  private readonly calls = new Map<WaitingCall, () => void>();

  get size(): number {
    return this.calls.size;
  }

  /** Queues `call`, armed with its signal and deadline (a rejection of its own while it waits). */
  add(call: WaitingCall): void {
    const { signal } = call.options;
    const timer =
      call.deadline === undefined
        ? undefined
        : setTimeout(() => this.expire(call), Math.max(0, call.deadline - performance.now()));
    const onAbort = () => {
      this.remove(call);
      call.reject(
        new CallAbortedError(`call "${call.method}" was aborted while waiting for a free worker`, {
          cause: signal?.reason,
          timedOut: isTimeoutReason(signal?.reason),
        }),
      );
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    this.calls.set(call, () => {
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    });
  }

  /** The oldest waiting call, taken out of the queue and disarmed; undefined when none waits. */
  take(): WaitingCall | undefined {
    const oldest = this.calls.keys().next();
    if (oldest.done) return undefined;
    this.remove(oldest.value);
    return oldest.value;
  }

  /** Rejects every waiting call with `error` (the pool stopped). */
  rejectAll(error: Error): void {
    for (let call = this.take(); call !== undefined; call = this.take()) call.reject(error);
  }

  private expire(call: WaitingCall): void {
    if (!this.calls.has(call)) return;
    this.remove(call);
    call.reject(
      new CallAbortedError(`call "${call.method}" timed out after ${call.timeoutMs} ms waiting for a free worker`, {
        timedOut: true,
        cause: new DOMException(`timed out after ${call.timeoutMs} ms`, "TimeoutError"),
      }),
    );
  }

  private remove(call: WaitingCall): void {
    this.calls.get(call)?.();
    this.calls.delete(call);
  }
}
