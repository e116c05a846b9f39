// Our calls awaiting an answer, by id: slots indexed by the id's low bits, and a Map for the rare collision.

/** Slots to begin with, and the most the table grows to (past it, collisions go to the Map). */
const FIRST_SLOTS = 64;
const MAX_SLOTS = 1 << 16;

/**
 * Call ids are handed out in order and mostly answered in order, so the calls in flight fill consecutive slots and
 * a call costs no allocation here (a Map's set and delete rehash its table as it fills with deleted entries). A call
 * whose slot is taken by an older one still in flight goes to the overflow Map; the slots double while more than
 * half are in use.
 */
export class PendingTable<T extends { readonly id: number }> {
  private slots: (T | undefined)[] = new Array<T | undefined>(FIRST_SLOTS).fill(undefined);
  private mask = FIRST_SLOTS - 1;
  private readonly overflow = new Map<number, T>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Adds `call`; its id must not be in the table. */
  add(call: T): void {
    if (this.count >= this.slots.length >> 1 && this.slots.length < MAX_SLOTS) this.grow();
    this.place(call);
    this.count++;
  }

  get(id: number): T | undefined {
    const call = this.slots[id & this.mask];
    if (call !== undefined && call.id === id) return call;
    return this.overflow.size === 0 ? undefined : this.overflow.get(id);
  }

  /** Removes call `id`; false when it was not in the table. */
  delete(id: number): boolean {
    const i = id & this.mask;
    const call = this.slots[i];
    if (call !== undefined && call.id === id) {
      this.slots[i] = undefined;
    } else if (this.overflow.size === 0 || !this.overflow.delete(id)) {
      return false;
    }
    this.count--;
    return true;
  }

  /** Removes every call and returns them in the order they were made (by id). */
  takeAll(): T[] {
    const calls: T[] = [...this.overflow.values()];
    for (const call of this.slots) if (call !== undefined) calls.push(call);
    this.slots.fill(undefined);
    this.overflow.clear();
    this.count = 0;
    return calls.sort((a, b) => a.id - b.id);
  }

  private place(call: T): void {
    const i = call.id & this.mask;
    if (this.slots[i] === undefined) this.slots[i] = call;
    else this.overflow.set(call.id, call);
  }

  private grow(): void {
    const calls = this.takeAll();
    this.slots = new Array<T | undefined>(this.slots.length * 2).fill(undefined);
    this.mask = this.slots.length - 1;
    for (const call of calls) this.place(call);
    this.count = calls.length;
  }
}
