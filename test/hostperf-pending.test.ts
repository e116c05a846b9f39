// The pending-call table: found by id however ids collide in its slots, emptied in the order calls were made.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PendingTable } from "../src/rpc/pending-table.js";

const call = (id: number) => ({ id });

describe("the pending-call table", () => {
  it("finds and removes calls answered out of order while thousands are in flight", () => {
    const table = new PendingTable<{ id: number }>();
    const calls = Array.from({ length: 5000 }, (_, i) => call(i + 1));
    for (const c of calls) table.add(c);
    assert.equal(table.size, 5000);
    for (let i = calls.length - 1; i >= 0; i -= 2) assert.equal(table.delete(calls[i]!.id), true);
    assert.equal(table.size, 2500);
    for (const c of calls) assert.equal(table.get(c.id), c.id % 2 === 1 ? c : undefined, `id ${c.id}`);
    assert.equal(table.delete(2), false, "an answered call is not there twice");
    assert.equal(table.delete(999_999), false);
  });

  it("keeps an old call whose slot a newer id reuses, past the slots' largest size", () => {
    const table = new PendingTable<{ id: number }>();
    const old = call(1);
    table.add(old);
    // Ids 2^16 + 1, 2^17 + 1, ... share slot 1 with the old call at every table size.
    const sharers = [1 << 16, 1 << 17, 2 ** 40].map((n) => call(n + 1));
    for (const c of sharers) table.add(c);
    for (let id = 2; id < 40_000; id++) table.add(call(id));
    assert.equal(table.get(1), old);
    for (const c of sharers) assert.equal(table.get(c.id), c);
    assert.equal(table.delete(sharers[1]!.id), true);
    assert.equal(table.get(sharers[1]!.id), undefined);
    assert.equal(table.get(1), old);
    assert.equal(table.size, 1 + 2 + 39_998);
  });

  it("hands every call back in the order they were made when emptied", () => {
    const table = new PendingTable<{ id: number }>();
    const ids = [5, 3 + 64, 3, 1 << 20, 7, 2 ** 33 + 5];
    for (const id of [...ids].sort((a, b) => a - b)) table.add(call(id));
    assert.deepEqual(
      table.takeAll().map((c) => c.id),
      [...ids].sort((a, b) => a - b),
    );
    assert.equal(table.size, 0);
    assert.equal(table.get(5), undefined);
  });
});
