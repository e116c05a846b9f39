// A token bucket on an injected clock: the pure rate rule behind the output flood gate.

/**
 * Holds up to `capacity` tokens and gains `perSecond` of them each second. `take(n, nowMs)` spends n tokens when
 * there are enough and says whether it did; refusing costs nothing, so a flood that keeps asking stays refused
 * until the bucket has refilled; `spend` may overdraw it. The clock is passed in (performance.now() in use, any numbers in tests).
 */
export class TokenBucket {
  private tokens: number;
  private lastMs: number;

  constructor(
    private readonly perSecond: number,
    private readonly capacity: number,
    nowMs: number,
  ) {
    this.tokens = capacity;
    this.lastMs = nowMs;
  }

  take(count: number, nowMs: number): boolean {
    this.refill(nowMs);
    if (count > this.tokens) return false;
    this.tokens -= count;
    return true;
  }

  /**
   * Spends `count` tokens whatever there are: the bucket may go below zero and owes them, refilling from there.
   * For an item larger than the whole bucket, which `take` could never pass.
   */
  spend(count: number, nowMs: number): void {
    this.refill(nowMs);
    this.tokens -= count;
  }

  /** Tokens there now, below zero while in debt (for the gate's checks and for tests). */
  available(nowMs: number): number {
    this.refill(nowMs);
    return this.tokens;
  }

  private refill(nowMs: number): void {
    // A clock that goes back (it should not) never adds tokens.
    const elapsed = Math.max(0, nowMs - this.lastMs);
    this.lastMs = Math.max(this.lastMs, nowMs);
    this.tokens = Math.min(this.capacity, this.tokens + (elapsed * this.perSecond) / 1000);
  }
}
