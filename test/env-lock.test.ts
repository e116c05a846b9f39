// Fingerprints and locks, without building venvs: canonical hashing, in-process queueing, abort, stale takeover.

import assert from "node:assert/strict";
import { existsSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { CallAbortedError } from "../src/errors.js";
import { canonicalJson, computeFingerprint, type FingerprintInputs } from "../src/env/fingerprint.js";
import { acquireLockFile, isDead, withLock } from "../src/env/lock.js";
import { deadPid, tempRoot } from "./fixtures/env/helpers.js";

const root = tempRoot("pyisolate-env-lock-");
after(() => root.remove());

const inputs: FingerprintInputs = {
  python: { path: "/usr/bin/python3.11", version: "3.11.7" },
  dependencies: ["six==1.16.0", "numpy==1.26.4"],
  indexUrl: null,
  extraIndexUrls: [],
  findLinks: [],
  runtimeVersion: "0.1.0",
};

describe("fingerprint", () => {
  it("is independent of key order but not of dependency order or any input", () => {
    assert.equal(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] }), '{"a":[{"c":3,"d":2}],"b":1}');
    const fp = computeFingerprint(inputs);
    assert.match(fp, /^[0-9a-f]{64}$/);
    assert.equal(computeFingerprint({ ...inputs }), fp);
    assert.notEqual(computeFingerprint({ ...inputs, dependencies: [...inputs.dependencies].reverse() }), fp);
    assert.notEqual(computeFingerprint({ ...inputs, runtimeVersion: "0.1.1" }), fp);
    assert.notEqual(computeFingerprint({ ...inputs, python: { ...inputs.python, version: "3.11.8" } }), fp);
    assert.notEqual(computeFingerprint({ ...inputs, indexUrl: "https://example.org/simple" }), fp);
  });
});

describe("lock", () => {
  it("queues callers in this process, in order, and removes the lock file after", async () => {
    const lock = path.join(root.dir, ".lock-queue");
    const order: string[] = [];
    const waits: string[] = [];
    const job = (id: string) =>
      withLock(lock, { onWait: () => waits.push(id) }, async () => {
        order.push(`${id}:start`);
        assert.equal(JSON.parse(readFileSync(lock, "utf8")).pid, process.pid);
        await new Promise((r) => setImmediate(r));
        order.push(`${id}:end`);
        return id;
      });
    assert.deepEqual(await Promise.all([job("a"), job("b"), job("c")]), ["a", "b", "c"]);
    assert.deepEqual(order, ["a:start", "a:end", "b:start", "b:end", "c:start", "c:end"]);
    assert.deepEqual(waits, ["b", "c"]);
    assert.equal(existsSync(lock), false);
  });

  it("a failing holder still releases the lock", async () => {
    const lock = path.join(root.dir, ".lock-fail");
    await assert.rejects(
      withLock(lock, {}, async () => {
        throw new Error("boom");
      }),
      /boom/,
    );
    assert.equal(await withLock(lock, {}, async () => "next"), "next");
  });

  it("honours the signal while waiting, and the queue goes on", async () => {
    const lock = path.join(root.dir, ".lock-abort");
    let releaseFirst!: () => void;
    let started!: () => void;
    const firstStarted = new Promise<void>((r) => (started = r));
    const first = withLock(lock, {}, () => {
      started();
      return new Promise<string>((r) => (releaseFirst = () => r("first")));
    });
    const ac = new AbortController();
    const waiting = withLock(
      lock,
      { signal: ac.signal, onWait: () => ac.abort(new Error("gave up")) },
      async () => "never",
    );
    const err = await waiting.catch((e: unknown) => e);
    assert.ok(err instanceof CallAbortedError, String(err));
    assert.equal((err.cause as Error).message, "gave up");
    const third = withLock(lock, {}, async () => "third");
    await firstStarted;
    releaseFirst();
    assert.deepEqual(await Promise.all([first, third]), ["first", "third"]);
  });

  it("waits on a live owner's lock file, aborting when asked", async () => {
    const lock = path.join(root.dir, ".lock-live");
    // pid 1 is alive on every system; it stands for another process holding the lock.
    writeFileSync(lock, JSON.stringify({ pid: 1, hostname: hostname(), acquiredAt: new Date().toISOString() }));
    const ac = new AbortController();
    let owner: unknown;
    const err = await acquireLockFile(lock, {
      signal: ac.signal,
      onWait: (o) => {
        owner = o;
        ac.abort();
      },
    }).catch((e: unknown) => e);
    assert.ok(err instanceof CallAbortedError, String(err));
    assert.equal((owner as { pid: number }).pid, 1);
    assert.equal(JSON.parse(readFileSync(lock, "utf8")).pid, 1, "a live owner's lock is left alone");
  });

  it("takes over a lock whose owner is dead, or an unreadable one that is old", async () => {
    const pid = deadPid();
    assert.equal(isDead({ pid, hostname: hostname(), acquiredAt: "" }), true);
    assert.equal(
      isDead({ pid, hostname: `not-${hostname()}`, acquiredAt: "" }),
      false,
      "another host's pid cannot be judged",
    );
    const lock = path.join(root.dir, ".lock-stale");
    writeFileSync(lock, JSON.stringify({ pid, hostname: hostname(), acquiredAt: new Date().toISOString() }));
    const crashedDraft = `${lock}.${pid}-0123abcd.tmp`;
    writeFileSync(crashedDraft, "{}");
    let waited = false;
    const release = await acquireLockFile(lock, { onWait: () => (waited = true) });
    assert.equal(existsSync(crashedDraft), false, "a dead process's draft is cleaned up");
    assert.equal(waited, false);
    assert.equal(JSON.parse(readFileSync(lock, "utf8")).pid, process.pid);
    await release();
    writeFileSync(lock, "garbage");
    const old = new Date(Date.now() - 60_000);
    utimesSync(lock, old, old);
    const release2 = await acquireLockFile(lock);
    assert.equal(JSON.parse(readFileSync(lock, "utf8")).pid, process.pid);
    await release2();
    assert.equal(existsSync(lock), false);
  });
});
