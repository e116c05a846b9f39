// A pool with maxInFlight: calls beyond every worker's room wait on the host, in order, and go to the first worker
// with room; while they wait their timeout and signal hold, and stop() rejects them. Real processes, no sandbox.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  CallAbortedError,
  ConfigError,
  ExtensionClosedError,
  ExtensionCrashedError,
  type ExtensionPool,
} from "../src/index.js";
import { fixture, makeManager, waitFor } from "./helpers.js";

const MODULE = fixture("pool_ext");
const manager = makeManager();
after(() => manager.close());

/** Long enough for a blocked call never to time out during a test, however slow the machine. */
const BLOCKED = { timeoutMs: 120_000 };

describe("a pool of 2 workers with maxInFlight 1", () => {
  let pool: ExtensionPool;
  before(async () => {
    pool = await manager.pool({
      name: "pool_queue",
      modulePath: MODULE,
      sandbox: { mode: "disabled" },
      workers: 2,
      maxInFlight: 1,
      callTimeoutMs: 400, // the default a waiting call's timeout counts from
    });
  });
  after(() => pool.stop());

  let gates = 0;

  /**
   * Blocks both workers on fresh gates (a gate stays open once opened), by sticky keys, which bypass the limit; returns
   * the keys and what unblocks them.
   */
  async function blockBoth(): Promise<{
    a: string;
    b: string;
    held: Promise<string>[];
    release: () => Promise<[string, string]>;
  }> {
    const [a, b] = [`a${++gates}`, `b${gates}`];
    const onA = pool.call("block", [a], { sticky: a, ...BLOCKED }) as Promise<string>;
    const onB = pool.call("block", [b], { sticky: b, ...BLOCKED }) as Promise<string>;
    await waitFor(() => pool.workers.every((w) => w.inFlight === 1), 5000, "both workers busy");
    return {
      a,
      b,
      held: [onA, onB],
      release: async () => {
        await pool.call("unblock", [a], { sticky: a });
        await pool.call("unblock", [b], { sticky: b });
        return [await onA, await onB];
      },
    };
  }

  it("holds a call while both workers are full and sends it to the first with room", async () => {
    const blocked = await blockBoth();
    const waiting = pool.call("whoami", [], BLOCKED) as Promise<{ token: string }>;
    assert.equal(pool.queued, 1);
    assert.deepEqual(
      pool.workers.map((w) => w.inFlight),
      [1, 1],
      "no worker was sent more than one call",
    );
    await pool.call("unblock", [blocked.a], { sticky: blocked.a });
    const { token } = await waiting;
    assert.equal(pool.queued, 0);
    const [a] = await blocked.release();
    assert.equal(token, a, "the waiting call ran on the worker that had room first");
  });

  it("sends waiting calls in the order they were made", async () => {
    const blocked = await blockBoth();
    const settled: number[] = [];
    const calls = [0, 1, 2, 3].map((i) => pool.call("whoami", [], BLOCKED).then(() => settled.push(i)));
    assert.equal(pool.queued, 4);
    await pool.call("unblock", [blocked.a], { sticky: blocked.a }); // one worker with room: they run one by one
    await Promise.all(calls);
    assert.equal(pool.queued, 0);
    assert.deepEqual(settled, [0, 1, 2, 3]);
    await blocked.release();
  });

  it("times a waiting call out by its own timeout, or else the workers' default, and never sends it", async () => {
    const blocked = await blockBoth();
    const own = pool.call("whoami", [], { timeoutMs: 100 });
    const byDefault = pool.call("whoami", []);
    for (const [call, ms] of [
      [own, 100],
      [byDefault, 400],
    ] as const) {
      await assert.rejects(
        call,
        (e: unknown) =>
          e instanceof CallAbortedError && e.timedOut && e.message.includes(`after ${ms} ms waiting for a free worker`),
      );
    }
    assert.equal(pool.queued, 0);
    assert.deepEqual(
      pool.workers.map((w) => w.inFlight),
      [1, 1],
    );
    await blocked.release();
  });

  it("rejects a waiting call whose signal fires, and one whose signal had fired, as aborted", async () => {
    const blocked = await blockBoth();
    const controller = new AbortController();
    const waiting = pool.call("whoami", [], { signal: controller.signal });
    controller.abort();
    await assert.rejects(waiting, (e: unknown) => e instanceof CallAbortedError && !e.timedOut);
    await assert.rejects(
      pool.call("whoami", [], { signal: AbortSignal.abort() }),
      (e: unknown) => e instanceof CallAbortedError && !e.timedOut,
    );
    assert.equal(pool.queued, 0);
    await blocked.release();
  });

  it("refuses a bad timeout at once, not after waiting", async () => {
    const blocked = await blockBoth();
    await assert.rejects(pool.call("whoami", [], { timeoutMs: -1 }), RangeError);
    assert.equal(pool.queued, 0);
    await blocked.release();
  });

  it("rejects waiting calls when the pool stops", async () => {
    const blocked = await blockBoth();
    const held = blocked.held.map((call) =>
      call.then(
        () => "answered",
        (e: unknown) => e,
      ),
    ); // they reject too
    const waiting = pool.call("whoami", [], BLOCKED);
    const stopping = pool.stop();
    await assert.rejects(waiting, (e: unknown) => e instanceof ExtensionClosedError && /stopping/.test(e.message));
    for (const outcome of await Promise.all(held)) assert.ok(outcome instanceof ExtensionClosedError, String(outcome));
    await stopping;
  });
});

describe("maxInFlight", () => {
  it("must be a whole number from 1", async () => {
    for (const bad of [0, 1.5, -1, "2", Number.NaN]) {
      await assert.rejects(
        manager.pool({
          name: "pool_bad_limit",
          modulePath: MODULE,
          sandbox: { mode: "disabled" },
          workers: 2,
          maxInFlight: bad as number,
        }),
        (e: unknown) => e instanceof ConfigError && e.key === "maxInFlight",
        String(bad),
      );
    }
  });
});

describe("a pool with maxInFlight 1 whose worker crashes", () => {
  it("sends the waiting calls to the worker that lives, and rejects only the crashed worker's own call", async () => {
    const pool = await manager.pool({
      name: "pool_queue_crash",
      modulePath: MODULE,
      sandbox: { mode: "disabled" },
      workers: 2,
      maxInFlight: 1,
    });
    try {
      const onA = pool.call("block", ["crash-a"], { sticky: "a", ...BLOCKED }).catch((e: unknown) => e);
      const onB = pool.call("block", ["crash-b"], { sticky: "b", ...BLOCKED }) as Promise<string>;
      await waitFor(() => pool.workers.every((w) => w.inFlight === 1), 5000, "both workers busy");
      const waiting = [0, 1].map(() => pool.call("whoami", [], BLOCKED) as Promise<{ token: string }>);
      assert.equal(pool.queued, 2);

      const died = await pool.call("die", [9], { sticky: "a" }).catch((e: unknown) => e);
      assert.ok(died instanceof ExtensionCrashedError, String(died));
      assert.ok((await onA) instanceof ExtensionCrashedError, "the crashed worker's call rejects with its crash");
      assert.equal(pool.queued, 2, "a crashed worker has no room: the calls still wait for the live one");

      const b = (await pool.call("unblock", ["crash-b"], { sticky: "b" })) as string;
      assert.equal(await onB, b);
      for (const call of waiting) assert.equal((await call).token, b, "each waiting call ran on the live worker");
      assert.equal(pool.queued, 0);
    } finally {
      await pool.stop();
    }
  });
});
