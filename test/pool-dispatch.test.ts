// Pools with real processes under bwrap, Landlock and no sandbox: one venv, calls spread over every worker, the
// least-busy worker first, sticky keys, events tagged with their worker, stop() ending every process.

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ConfigError, ExtensionLoadError, type ExtensionPool } from "../src/index.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import type { SandboxCapabilities } from "../src/sandbox/types.js";
import { fixture, isAlive, makeManager, waitFor } from "./helpers.js";
import { SANDBOX_MODES, unavailableMode } from "./sandbox-modes.js";

const MODULE = fixture("pool_ext");

type PoolApi = {
  whoami(): Promise<{ token: string; pid: number }>;
  block(name: string): Promise<string>;
  unblock(name: string): Promise<string>;
  remember(key: string, value: unknown): Promise<string>;
  recall(key: string): Promise<unknown>;
  shout(text: string): Promise<string>;
};

/** Compile-time only (never called): the pool's proxy and events are typed as an Extension's. */
export function typedPool(pool: ExtensionPool<PoolApi, { said: { text: string; token: string } }>): void {
  const token: Promise<string> = pool.proxy.shout("x");
  // @ts-expect-error not a method of PoolApi
  void pool.proxy.nope();
  // @ts-expect-error shout takes a string
  void pool.proxy.shout(1);
  pool.on("said", (payload, worker: number) => payload.text.length + worker);
  // @ts-expect-error the payload has no such field
  pool.on("said", (payload) => payload.missing);
  void token;
}

let caps: SandboxCapabilities;
const manager = makeManager();
before(async () => {
  caps = await detectSandbox();
});
after(() => manager.close());

for (const mode of SANDBOX_MODES) {
  describe(`a pool of 3 workers under ${mode.label}`, () => {
    let pool: ExtensionPool<PoolApi, { said: { text: string; token: string } }> | undefined;
    let skip: string | undefined;
    before(async () => {
      skip = unavailableMode(caps, mode.sandbox);
      if (!skip)
        pool = await manager.pool({
          name: `pool_dispatch_${mode.tag}`,
          modulePath: MODULE,
          sandbox: mode.sandbox,
          workers: 3,
        });
    });
    after(() => pool?.stop());

    it("runs 3 live processes of the extension on one venv", async (t) => {
      if (skip) return t.skip(skip);
      const pids = pool!.workers.map((w) => w.pid);
      assert.equal(new Set(pids).size, 3, `three processes: ${pids.join(", ")}`);
      for (const pid of pids) assert.ok(pid !== undefined && isAlive(pid));
      assert.equal(pool!.state, "ready");
      assert.ok(pool!.methods.includes("whoami"));
      assert.ok(existsSync(join(pool!.environment.venvPath, "pyvenv.cfg")), "the pool's one venv exists");
      assert.equal(manager.getPool(`pool_dispatch_${mode.tag}`), pool);
    });

    it("spreads calls that report their process over all 3 workers, in turn while they are idle", async (t) => {
      if (skip) return t.skip(skip);
      const tokens: string[] = [];
      for (let i = 0; i < 6; i++) tokens.push((await pool!.proxy.whoami()).token);
      assert.equal(new Set(tokens).size, 3, "each worker answered");
      assert.deepEqual(tokens.slice(3), tokens.slice(0, 3), "idle workers take turns");
      if (mode.tag !== "bwrap") {
        // Without a PID namespace the pid Python reports is the host's pid of that worker.
        const pids = new Set<number>();
        for (let i = 0; i < 3; i++) pids.add((await pool!.proxy.whoami()).pid);
        assert.deepEqual([...pids].sort(), pool!.workers.map((w) => w.pid!).sort());
      }
    });

    it("sends calls to the least-busy worker, and a sticky call to its worker however busy", async (t) => {
      if (skip) return t.skip(skip);
      const a = pool!.call("block", ["a"], { sticky: "a" }) as Promise<string>;
      const b = pool!.call("block", ["b"], { sticky: "b" }) as Promise<string>;
      await waitFor(() => pool!.workers.filter((w) => w.inFlight === 1).length === 2, 5000, "two workers busy");
      const quick = new Set<string>();
      for (let i = 0; i < 5; i++) quick.add((await pool!.proxy.whoami()).token);
      assert.equal(quick.size, 1, "every call while two workers were busy went to the idle one");
      // `unblock` must reach the very process blocked on "a": the sticky key takes it there, past the idle worker.
      const ua = (await pool!.call("unblock", ["a"], { sticky: "a" })) as string;
      assert.equal(await a, ua);
      const ub = (await pool!.call("unblock", ["b"], { sticky: "b" })) as string;
      assert.equal(await b, ub);
      assert.equal(new Set([ua, ub, ...quick]).size, 3, "the blocked calls and the quick ones ran on three workers");
      assert.ok(pool!.release("a") && pool!.release("b"));
      assert.equal(pool!.release("a"), false, "a released key is gone");
    });

    it("keeps a sticky session's state on one worker across calls", async (t) => {
      if (skip) return t.skip(skip);
      const home = (await pool!.call("remember", ["k", `v-${mode.tag}`], { sticky: "session-1" })) as string;
      for (let i = 0; i < 4; i++) {
        await pool!.proxy.whoami(); // other calls move the turn on
        assert.equal(await pool!.call("recall", ["k"], { sticky: "session-1" }), `v-${mode.tag}`);
      }
      const others = new Set<unknown>();
      for (let i = 0; i < 3; i++) others.add(await pool!.proxy.recall("k"));
      assert.ok(others.has(null), "workers other than the sticky one never saw the session's state");
      assert.equal(home.length, 16);
    });

    it("rejects a call with a bad sticky key as a ConfigError, and the pool serves on", async (t) => {
      if (skip) return t.skip(skip);
      await assert.rejects(
        pool!.call("whoami", [], { sticky: 42 as unknown as string }),
        (e: unknown) => e instanceof ConfigError && e.key === "sticky",
      );
      assert.equal(typeof (await pool!.proxy.whoami()).token, "string");
    });

    it("delivers an extension event from any worker tagged with that worker's index", async (t) => {
      if (skip) return t.skip(skip);
      const seen: { text: string; token: string; worker: number }[] = [];
      pool!.on("said", (payload, worker) => seen.push({ ...payload, worker }));
      const tokens: string[] = [];
      for (let i = 0; i < 3; i++) tokens.push(await pool!.proxy.shout(`hi ${i}`));
      await waitFor(() => seen.length === 3, 5000, "three events");
      assert.deepEqual(seen.map((s) => s.worker).sort(), [0, 1, 2]);
      assert.deepEqual(
        seen.map((s) => s.token),
        tokens,
        "each event came from the worker that served the call",
      );
      const byWorker = new Map(seen.map((s) => [s.worker, s.token]));
      assert.equal(byWorker.size, 3);
    });
  });
}

describe("pool lifecycle", () => {
  it("refuses a second extension of the same name, and stop() ends every worker", async () => {
    const pool = await manager.pool({
      name: "pool_stop",
      modulePath: MODULE,
      sandbox: { mode: "disabled" },
      workers: 2,
    });
    await assert.rejects(
      manager.load({ name: "pool_stop", modulePath: MODULE, sandbox: { mode: "disabled" } }),
      (e: unknown) => e instanceof ConfigError && e.key === "name",
    );
    const pids = pool.workers.map((w) => w.pid!);
    const exits: number[] = [];
    pool.on("exit", (_exit, worker) => exits.push(worker));
    await pool.stop();
    assert.equal(pool.state, "stopped");
    for (const pid of pids) assert.equal(isAlive(pid), false);
    assert.deepEqual(exits.sort(), [0, 1], "each worker's exit came tagged with its index");
    assert.equal(manager.getPool("pool_stop"), undefined);
    await assert.rejects(pool.call("whoami"), /stopped/);
    await pool.stop(); // idempotent
  });

  it("fails as a whole when one worker cannot start: the others are stopped, their folders gone, the name free", async () => {
    const claim = mkdtempSync(join(tmpdir(), "pool-claim-"));
    try {
      const failed = await manager
        .pool({
          name: "pool_partial",
          modulePath: MODULE,
          sandbox: { mode: "disabled" },
          workers: 3,
          env: { POOL_FAIL_ONE_DIR: claim },
        })
        .catch((e: unknown) => e);
      assert.ok(failed instanceof ExtensionLoadError, String(failed));
      assert.match(failed.message, /failed to load/);
      assert.equal(manager.getPool("pool_partial"), undefined);
      assert.deepEqual(
        readdirSync(tmpdir()).filter((n) => n.startsWith("pyisolate-pool_partial-")),
        [],
        "every worker's private folder was removed",
      );
      const pool = await manager.pool({
        name: "pool_partial",
        modulePath: MODULE,
        sandbox: { mode: "disabled" },
        workers: 2,
      });
      assert.equal(pool.state, "ready");
      await pool.stop();
    } finally {
      rmSync(claim, { recursive: true, force: true });
    }
  });

  it("points load({ workers }) to manager.pool()", async () => {
    const options = { name: "pool_via_load", modulePath: MODULE, workers: 2 };
    await assert.rejects(
      manager.load(options),
      (e: unknown) => e instanceof ConfigError && e.key === "workers" && /manager\.pool\(/.test(e.message),
    );
  });

  it("refuses a pool of 0 workers before building anything", async () => {
    await assert.rejects(
      manager.pool({ name: "pool_zero", modulePath: MODULE, workers: 0 }),
      (e: unknown) => e instanceof ConfigError && e.key === "workers",
    );
  });
});
