// The restart policy as data and pure decisions: whether a crashed extension comes back, and after how long.

/** `load({ restart })`: off when absent. */
export interface RestartOptions {
  /** How many restarts `windowMs` may hold; one more crash inside it and the extension stays crashed (default 3). */
  maxRestarts?: number;
  /** The sliding window the restarts are counted in (default 60 000 ms). */
  windowMs?: number;
  /** The wait between a crash and the new process (default 1 000 ms); a stop during it ends it at once. */
  backoffMs?: number;
  /** Calls made while it restarts wait for it (true, the default) or reject at once with the crash error (false). */
  queueCalls?: boolean;
  /** The longest a queued call waits for the restart (default 30 000 ms); its own timeoutMs also bounds it. */
  queueTimeoutMs?: number;
}

export type RestartPolicy = Required<RestartOptions>;

export const RESTART_DEFAULTS: RestartPolicy = Object.freeze({
  maxRestarts: 3,
  windowMs: 60_000,
  backoffMs: 1_000,
  queueCalls: true,
  queueTimeoutMs: 30_000,
});

/** Pure: the policy with the defaults filled in. */
export function resolveRestartPolicy(options: RestartOptions): RestartPolicy {
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  return { ...RESTART_DEFAULTS, ...defined };
}

/** Pure: the restart times still inside the window at `now`. */
export function restartsInWindow(history: readonly number[], windowMs: number, now: number): number[] {
  return history.filter((at) => now - at < windowMs);
}

/**
 * Pure: after a crash at `now`, with earlier restarts at `history`, the wait before the next start, or undefined when
 * the policy is spent (maxRestarts already inside the window) and the extension stays crashed.
 */
export function nextRestartDelay(policy: RestartPolicy, history: readonly number[], now: number): number | undefined {
  if (restartsInWindow(history, policy.windowMs, now).length >= policy.maxRestarts) return undefined;
  return policy.backoffMs;
}

/**
 * Pure: the code's policy as an extension's pyisolate.yaml may narrow it: fewer restarts (`maxRestarts: 0` is off),
 * a longer window or backoff, a shorter queue wait, no queue. The file never turns restarts on.
 */
export function narrowRestartPolicy(
  fromCode: RestartPolicy | undefined,
  fromFile: RestartOptions | undefined,
): RestartPolicy | undefined {
  if (!fromCode || !fromFile) return fromCode;
  const narrowed: RestartPolicy = {
    maxRestarts: Math.min(fromCode.maxRestarts, fromFile.maxRestarts ?? Infinity),
    windowMs: Math.max(fromCode.windowMs, fromFile.windowMs ?? 0),
    backoffMs: Math.max(fromCode.backoffMs, fromFile.backoffMs ?? 0),
    queueCalls: fromCode.queueCalls && (fromFile.queueCalls ?? true),
    queueTimeoutMs: Math.min(fromCode.queueTimeoutMs, fromFile.queueTimeoutMs ?? Infinity),
  };
  return narrowed.maxRestarts === 0 ? undefined : narrowed;
}
