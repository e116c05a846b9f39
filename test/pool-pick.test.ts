// The pool's choice of worker and its shown state, as pure functions: least busy first, ties in turn, ready before
// restarting, nothing when every worker is gone.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pickWorker, poolState, type WorkerLoad } from "../src/pool/pick.js";
import { checkStickyKey, splitPoolOptions } from "../src/pool/options.js";
import { ConfigError } from "../src/errors.js";

const ready = (inFlight: number): WorkerLoad => ({ state: "ready", inFlight });

describe("pickWorker", () => {
  it("takes the worker with the fewest calls in flight", () => {
    assert.deepEqual(pickWorker([ready(2), ready(0), ready(1)], 0), { index: 1, cursor: 2 });
  });

  it("hands idle workers out in turn, starting at the cursor", () => {
    const idle = [ready(0), ready(0), ready(0)];
    const order: number[] = [];
    let cursor = 0;
    for (let i = 0; i < 6; i++) {
      const picked = pickWorker(idle, cursor)!;
      order.push(picked.index);
      cursor = picked.cursor;
    }
    assert.deepEqual(order, [0, 1, 2, 0, 1, 2]);
  });

  it("breaks a tie between busy workers in turn too", () => {
    assert.equal(pickWorker([ready(1), ready(3), ready(1)], 1)!.index, 2);
    assert.equal(pickWorker([ready(1), ready(3), ready(1)], 0)!.index, 0);
  });

  it("prefers any ready worker to an idle one that is restarting", () => {
    assert.equal(pickWorker([{ state: "restarting", inFlight: 0 }, ready(5)], 0)!.index, 1);
  });

  it("falls back to a restarting worker when none is ready, and to nothing when all are gone", () => {
    assert.equal(
      pickWorker(
        [
          { state: "crashed", inFlight: 0 },
          { state: "restarting", inFlight: 0 },
        ],
        0,
      )!.index,
      1,
    );
    assert.equal(
      pickWorker(
        [
          { state: "crashed", inFlight: 0 },
          { state: "stopped", inFlight: 0 },
        ],
        0,
      ),
      undefined,
    );
  });
});

describe("poolState", () => {
  it("is ready while any worker is, restarting while one comes back, crashed or stopped after", () => {
    assert.equal(poolState(["crashed", "ready", "restarting"]), "ready");
    assert.equal(poolState(["crashed", "restarting"]), "restarting");
    assert.equal(poolState(["crashed", "crashed"]), "crashed");
    assert.equal(poolState(["stopped", "stopped"]), "stopped");
    assert.equal(poolState(["stopped", "crashed"]), "crashed");
  });
});

describe("pool options", () => {
  it("refuses a worker count that is not a whole number from 1 to 64, naming the key", () => {
    for (const workers of [0, -1, 1.5, 65, Number.NaN, "2" as unknown as number]) {
      assert.throws(
        () => splitPoolOptions({ name: "p", modulePath: ".", workers }),
        (e: unknown) => e instanceof ConfigError && e.key === "workers" && /^workers must be/.test(e.message),
      );
    }
    assert.deepEqual(splitPoolOptions({ name: "p", modulePath: ".", workers: 4 }), {
      workers: 4,
      maxInFlight: undefined,
      rest: { name: "p", modulePath: "." },
    });
  });

  it("takes maxInFlight apart: a whole number from 1, or absent", () => {
    for (const maxInFlight of [0, -1, 1.5, 1e7, Number.NaN, "2" as unknown as number]) {
      assert.throws(
        () => splitPoolOptions({ name: "p", modulePath: ".", workers: 2, maxInFlight }),
        (e: unknown) => e instanceof ConfigError && e.key === "maxInFlight" && /^maxInFlight must be/.test(e.message),
      );
    }
    assert.equal(splitPoolOptions({ name: "p", modulePath: ".", workers: 2, maxInFlight: 3 }).maxInFlight, 3);
  });

  it("refuses a sticky key that is not a short non-empty string", () => {
    for (const key of ["", 7, {}, "x".repeat(1025)]) {
      assert.throws(
        () => checkStickyKey(key),
        (e: unknown) => e instanceof ConfigError && e.key === "sticky",
      );
    }
    assert.equal(checkStickyKey("session-1"), "session-1");
    assert.equal(checkStickyKey(undefined), undefined);
  });
});
