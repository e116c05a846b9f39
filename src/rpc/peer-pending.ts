// One outgoing call in flight: its promise callbacks, timeout timer and abort listener.

/** What a pending call reports back to when it is aborted or times out. */
export interface PendingOwner {
  abandon(call: PendingCall, reason: unknown, timedOut: boolean): void;
}

/**
 * A call awaiting its `result` or `error`. It is its own abort listener (`handleEvent`) and the timer passes
 * it to a shared callback, so a call costs no closures beyond the promise executor.
 */
export class PendingCall {
  resolve!: (value: unknown) => void;
  reject!: (error: unknown) => void;
  timeoutMs: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private signal: AbortSignal | undefined;

  constructor(
    readonly owner: PendingOwner,
    readonly id: number,
    readonly target: string | undefined,
    readonly method: string | undefined,
    readonly fnId: number | undefined,
  ) {}

  /** Arms the timeout and the abort listener. */
  watch(signal: AbortSignal | undefined, timeoutMs: number | undefined): void {
    if (signal !== undefined) {
      this.signal = signal;
      signal.addEventListener("abort", this, { once: true });
    }
    if (timeoutMs !== undefined) {
      this.timeoutMs = timeoutMs;
      this.timer = setTimeout(onTimeout, timeoutMs, this);
    }
  }

  /** Disarms the timeout and abort listener; call once the call settles, whichever way. */
  unwatch(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.signal !== undefined) this.signal.removeEventListener("abort", this);
    this.timer = undefined;
    this.signal = undefined;
  }

  /** AbortSignal listener. */
  handleEvent(): void {
    const reason: unknown = this.signal?.reason;
    this.owner.abandon(this, reason, isTimeoutReason(reason));
  }

  /** "stats.mean" or "callable #3", for messages. */
  describe(): string {
    return this.fnId !== undefined ? `callable #${this.fnId}` : `${this.target}.${this.method}`;
  }
}

function onTimeout(call: PendingCall): void {
  call.owner.abandon(call, undefined, true);
}

/** An AbortSignal.timeout() reason counts as a timeout too. */
export function isTimeoutReason(reason: unknown): boolean {
  return typeof reason === "object" && reason !== null && (reason as { name?: unknown }).name === "TimeoutError";
}

/** Validates the per-call options once, with messages that name the option. */
export function checkCallOptions(options: { signal?: AbortSignal; timeoutMs?: number } | undefined): void {
  if (options === undefined) return;
  const { signal, timeoutMs } = options;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError("options.signal must be an AbortSignal");
  }
  if (timeoutMs !== undefined && !(typeof timeoutMs === "number" && timeoutMs > 0 && timeoutMs <= 2 ** 31 - 1)) {
    throw new RangeError(`options.timeoutMs must be a number of milliseconds between 1 and 2^31-1, got ${timeoutMs}`);
  }
}
