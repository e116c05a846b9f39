// The numbers of the memfds an extension lent us for its bytes, handed back in one `release` per tick.

/** Gathers lent memfd numbers as their bytes are copied out and sends them back once the current task is done. */
export class LentReturns {
  private numbers: number[] = [];
  private queued = false;

  constructor(private readonly send: (numbers: number[]) => void) {}

  /** Memfd `lent` was read: it goes back with the others read in this task. */
  add(lent: number): void {
    this.numbers.push(lent);
    if (this.queued) return;
    this.queued = true;
    queueMicrotask(() => this.flush());
  }

  private flush(): void {
    this.queued = false;
    const numbers = this.numbers;
    this.numbers = [];
    if (numbers.length > 0) this.send(numbers);
  }
}
