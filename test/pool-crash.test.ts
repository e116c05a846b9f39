// A pool's crashes with real processes under bwrap, Landlock and no sandbox: a SIGKILL of one worker mid-call rejects
// only that worker's calls (ExtensionCrashedError naming it), the others complete; the restart policy refills the
// worker; a policy spent leaves the pool serving on the rest; a sticky key moves off a crashed worker.

import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, describe, it } from "node:test";
import { ExtensionCrashedError, type ExtensionPool } from "../src/index.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import type { SandboxCapabilities } from "../src/sandbox/types.js";
import { fixture, isAlive, makeManager, waitFor } from "./helpers.js";
import { SANDBOX_MODES, unavailableMode } from "./sandbox-modes.js";

const MODULE = fixture("pool_ext");

let caps: SandboxCapabilities;
const manager = makeManager();
before(async () => {
  caps = await detectSandbox();
});
after(() => manager.close());

/** The distinct processes that answer `n` calls in a row. */
async function tokens(pool: ExtensionPool, n: number): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) seen.add(((await pool.call("whoami")) as { token: string }).token);
  return seen;
}

for (const mode of SANDBOX_MODES) {
  describe(`a pool's crash under ${mode.label}`, () => {
    let skip: string | undefined;
    before(() => {
      skip = unavailableMode(caps, mode.sandbox);
    });

    it("rejects only the killed worker's call; the other workers' calls complete and the pool serves on", async (t) => {
      if (skip) return t.skip(skip);
      const pool = await manager.pool({
        name: `pool_kill_${mode.tag}`,
        modulePath: MODULE,
        sandbox: mode.sandbox,
        workers: 3,
      });
      try {
        const keys = ["a", "b", "c"];
        const outcomes = keys.map((key) =>
          (pool.call("block", [key], { sticky: key }) as Promise<string>).then(
            (token) => ({ key, token, error: undefined as unknown }),
            (error: unknown) => ({ key, token: undefined, error }),
          ),
        );
        await waitFor(() => pool.workers.every((w) => w.inFlight === 1), 5000, "one blocked call on each worker");
        const crash = once(pool, "crash");
        const victim = pool.workers[1]!;
        process.kill(victim.pid!, "SIGKILL");
        const [error, worker] = await crash;
        assert.equal(worker, 1, "the crash event names the worker");
        assert.ok(
          error instanceof ExtensionCrashedError && error.worker === 1 && error.signal === "SIGKILL",
          String(error),
        );
        assert.match(error.message, /\(worker 1\) was killed by SIGKILL/);
        assert.equal(victim.state, "crashed");
        assert.equal(pool.state, "ready");
        // The two calls on live workers still wait: each is released through its own sticky key and completes.
        const settledKeys = new Set<string>();
        for (const outcome of outcomes) void outcome.then((o) => settledKeys.add(o.key));
        await waitFor(() => settledKeys.size >= 1, 5000, "the killed worker's call to settle");
        const survivors = keys.filter((key) => !settledKeys.has(key));
        assert.equal(survivors.length, 2, "two calls were still in flight after the kill");
        for (const key of survivors) await pool.call("unblock", [key], { sticky: key });
        const settled = await Promise.all(outcomes);
        const failed = settled.filter((o) => o.error !== undefined);
        assert.equal(failed.length, 1, "exactly one call rejected");
        assert.equal(failed[0]!.error, error, "with the error the crash event carried");
        assert.deepEqual(
          settled
            .filter((o) => o.token !== undefined)
            .map((o) => o.key)
            .sort(),
          survivors.sort(),
        );
        assert.equal((await tokens(pool, 6)).size, 2, "calls now go to the two live workers only");
        assert.equal(victim.inFlight, 0);
      } finally {
        await pool.stop();
      }
    });

    it("refills a crashed worker per the restart policy, then serves on the rest once the policy is spent", async (t) => {
      if (skip) return t.skip(skip);
      const pool = await manager.pool({
        name: `pool_refill_${mode.tag}`,
        modulePath: MODULE,
        sandbox: mode.sandbox,
        workers: 2,
        restart: { maxRestarts: 1, backoffMs: 50 },
      });
      try {
        const before = await tokens(pool, 2);
        assert.equal(before.size, 2);
        const dead = ((await pool.call("whoami", [], { sticky: "s" })) as { token: string }).token;
        const ready = once(pool, "ready");
        const died = await pool.call("die", [7], { sticky: "s" }).catch((e: unknown) => e);
        assert.ok(died instanceof ExtensionCrashedError && died.exitCode === 7, String(died));
        const index = died.worker!;
        const other = pool.workers[1 - index]!;
        // While it restarts the other worker takes every call, the sticky one too (its key was freed by the crash).
        assert.equal(pool.state, "ready");
        const during = ((await pool.call("whoami", [], { sticky: "s" })) as { token: string }).token;
        assert.notEqual(during, dead);
        assert.equal(other.state, "ready");
        const [readyWorker] = await ready;
        assert.equal(readyWorker, index, "the ready event names the refilled worker");
        const refilled = pool.workers[index]!;
        assert.equal(refilled.restarts, 1);
        assert.ok(refilled.pid !== undefined && isAlive(refilled.pid));
        const after = await tokens(pool, 4);
        assert.equal(after.size, 2, "both workers serve again");
        assert.ok(!after.has(dead), "the refilled worker is a new process");

        // A second crash of that worker inside the window: the policy (maxRestarts 1) is spent, it stays down.
        const spent = once(pool, "crash");
        process.kill(refilled.pid!, "SIGKILL");
        await spent;
        await waitFor(() => refilled.state === "crashed", 5000, "the worker to stay crashed");
        assert.equal(pool.state, "ready", "the pool serves on its other worker");
        assert.deepEqual([...(await tokens(pool, 3))], [((await pool.call("whoami")) as { token: string }).token]);
      } finally {
        await pool.stop();
      }
    });
  });
}
