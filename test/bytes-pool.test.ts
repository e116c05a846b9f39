// The pool of memfds a connection lends to its calls' large bytes: the pool's rules in process with the real addon,
// then real extensions, one of them hostile (it keeps every memfd it gets and writes into it after answering).

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { fstatSync, readSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { CallAbortedError, type Extension } from "../src/index.js";
import { BytesPool, POOL_MAX_ENTRIES } from "../src/rpc/bytes-pool.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import type { SandboxCapabilities } from "../src/sandbox/types.js";
import { nativeStatus } from "../src/tensor/native.js";
import { fixture, makeManager } from "./helpers.js";
import { SANDBOX_MODES, unavailableMode } from "./sandbox-modes.js";

const MODULE = fixture("bytes_pool");
const MiB = 1024 * 1024;
const NO_FDS = nativeStatus.available
  ? undefined
  : `the native addon is unavailable (${nativeStatus.reason}): no fds travel`;
const F_SEAL_SEAL = 0x1;
const F_SEAL_SHRINK = 0x2;
const F_SEAL_GROW = 0x4;
const F_SEAL_WRITE = 0x8;

/** `size` bytes of a pattern that differs with `seed`. */
function pattern(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The first `size` bytes of `fd`. */
function readFd(fd: number, size: number): Uint8Array {
  const out = Buffer.alloc(size);
  assert.equal(readSync(fd, out, 0, size, 0), size);
  return new Uint8Array(out.buffer, out.byteOffset, size);
}

/** Lends `bytes` to call `id` and plays the peer's part (the frame went out, its hold let go); the memfd's inode. */
function lendAndSend(p: BytesPool, bytes: Uint8Array, id: number): number {
  const lent = p.lend(bytes, id)!;
  const inode = fstatSync(lent.fd).ino;
  lent.hold.sent?.();
  lent.hold.release();
  return inode;
}

describe("the bytes pool's rules (in process, the real addon)", () => {
  const pool = () => new BytesPool(nativeStatus.available ? nativeStatus.addon : (undefined as never));

  it("lends a memfd sealed against shrinking, growing and new seals, but not against writing", (t) => {
    if (NO_FDS) return t.skip(NO_FDS);
    const p = pool();
    const lent = p.lend(pattern(MiB, 1), 1)!;
    const seals = nativeStatus.available ? nativeStatus.addon.getSeals(lent.fd) : 0;
    // (F_SEAL_EXEC may come too, from MFD_NOEXEC_SEAL.)
    assert.equal(
      seals! & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL | F_SEAL_WRITE),
      F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL,
    );
    assert.deepEqual(readFd(lent.fd, MiB), pattern(MiB, 1));
    p.close();
    lent.hold.release();
    assert.deepEqual(p.stats, { entries: 0, bytes: 0, free: 0 });
  });

  it("gives a memfd back when its call is answered, and writes the next call's bytes into the same one", (t) => {
    if (NO_FDS) return t.skip(NO_FDS);
    const p = pool();
    const inode = lendAndSend(p, pattern(MiB, 1), 1);
    assert.equal(p.stats.free, 0, "sent and not yet answered: still out");
    p.answered(1);
    assert.equal(p.stats.free, 1);
    for (const [id, seed] of [
      [2, 2],
      [3, 3],
    ]) {
      const next = p.lend(pattern(MiB - 7, seed!), id!)!;
      assert.equal(fstatSync(next.fd).ino, inode, "the same memfd");
      assert.deepEqual(readFd(next.fd, MiB - 7), pattern(MiB - 7, seed!));
      next.hold.sent?.();
      next.hold.release();
      p.answered(id!);
    }
    assert.equal(p.stats.entries, 1);
    p.close();
    assert.deepEqual(p.stats, { entries: 0, bytes: 0, free: 0 });
  });

  it("closes the memfd of an abandoned call instead of lending it again", (t) => {
    if (NO_FDS) return t.skip(NO_FDS);
    const p = pool();
    const inode = lendAndSend(p, pattern(MiB, 1), 1);
    p.abandoned(1);
    p.answered(1); // a late answer changes nothing
    assert.deepEqual(p.stats, { entries: 0, bytes: 0, free: 0 });
    const next = p.lend(pattern(MiB, 2), 2)!;
    assert.notEqual(fstatSync(next.fd).ino, inode);
    p.close();
    next.hold.release();
  });

  it("takes back at once a memfd whose frame was never sent, and waits for the send of one answered early", (t) => {
    if (NO_FDS) return t.skip(NO_FDS);
    const p = pool();
    const dropped = p.lend(pattern(MiB, 1), 1)!;
    dropped.hold.release(); // dropped before the fd went out (the connection closed, the encode failed)
    assert.equal(p.stats.free, 1);
    const early = p.lend(pattern(MiB, 2), 2)!;
    p.answered(2); // an answer before the fd left (only a hostile peer can): kept until it has gone
    assert.equal(p.stats.free, 0);
    early.hold.sent?.();
    early.hold.release();
    assert.equal(p.stats.free, 1);
    p.close();
  });

  it(`holds at most ${POOL_MAX_ENTRIES} memfds: past that a value gets none (the caller makes a fresh one)`, (t) => {
    if (NO_FDS) return t.skip(NO_FDS);
    const p = pool();
    const loans = Array.from({ length: POOL_MAX_ENTRIES }, (_, i) => p.lend(pattern(256 * 1024, i), i + 1));
    assert.ok(loans.every((loan) => loan !== undefined));
    assert.equal(p.lend(pattern(256 * 1024, 99), 99), undefined);
    p.close();
    for (const loan of loans) loan!.hold.release();
    assert.deepEqual(p.stats, { entries: 0, bytes: 0, free: 0 });
  });
});

let caps: SandboxCapabilities;
const manager = makeManager();
before(async () => {
  caps = await detectSandbox();
});
after(() => manager.close());

interface Digest {
  type: string;
  len: number;
  sha256: string;
  inode: number | null;
}

for (const mode of SANDBOX_MODES) {
  describe(`pooled bytes memfds with ${mode.label}`, () => {
    let skip: string | undefined;
    let ext: Extension | undefined;
    before(async () => {
      if (caps === undefined) caps = await detectSandbox();
      skip = NO_FDS ?? unavailableMode(caps, mode.sandbox);
      if (skip === undefined)
        ext = await manager.load({ name: `bytes_pool_${mode.tag}`, modulePath: MODULE, sandbox: mode.sandbox });
    });
    after(() => ext?.stop());

    it("carries each call's bytes in the same memfd, and a hostile extension that keeps it and writes into it after answering changes neither the host's bytes nor the next call's", async (t) => {
      if (skip !== undefined) return t.skip(skip);
      const sent = [pattern(3 * MiB, 1), pattern(3 * MiB, 2), pattern(3 * MiB, 3), pattern(2 * MiB, 4)];
      const copies = sent.map((bytes) => Uint8Array.from(bytes));
      const first = (await ext!.call("digest", [sent[0]])) as Digest;
      assert.deepEqual(first, { type: "bytes", len: 3 * MiB, sha256: sha256(copies[0]!), inode: first.inode });
      const seals = (await ext!.call("seals")) as number;
      assert.equal(seals & F_SEAL_WRITE, 0, "a pooled memfd: not sealed against writing");

      const attempts = await ext!.call("scribble");
      assert.deepEqual(attempts, {
        write: "done",
        seal: "refused: Operation not permitted",
        shrink: "refused: Operation not permitted",
        grow: "refused: Operation not permitted",
        punch: "done",
      });
      for (let i = 1; i < sent.length; i++) {
        const digest = (await ext!.call("digest", [sent[i]])) as Digest;
        assert.equal(digest.sha256, sha256(copies[i]!), `call ${i + 1} read its own bytes`);
        assert.equal(digest.inode, first.inode, `call ${i + 1} came in the pooled memfd`);
        await ext!.call("scribble");
      }
      sent.forEach((bytes, i) => assert.deepEqual(bytes, copies[i], "the host's own bytes never changed"));
    });
  });
}

describe("pooled bytes memfds across extensions and abandoned calls", () => {
  let a: Extension | undefined;
  let b: Extension | undefined;
  before(async () => {
    if (NO_FDS !== undefined) return;
    a = await manager.load({ name: "bytes_pool_a", modulePath: MODULE, sandbox: { mode: "disabled" } });
    b = await manager.load({ name: "bytes_pool_b", modulePath: MODULE, sandbox: { mode: "disabled" } });
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
  });

  it("never hands another extension a memfd the first one held", async (t) => {
    if (NO_FDS) return t.skip(NO_FDS);
    for (let i = 0; i < 3; i++) {
      await a!.call("digest", [pattern(MiB, i)]);
      await a!.call("scribble");
      const digest = (await b!.call("digest", [pattern(MiB, i + 10)])) as Digest;
      assert.equal(digest.sha256, sha256(pattern(MiB, i + 10)));
    }
    const heldByA = new Set((await a!.call("inodes")) as number[]);
    const heldByB = (await b!.call("inodes")) as number[];
    assert.equal(heldByA.size, 1, "a's three calls came in one pooled memfd");
    assert.ok(heldByB.length === 3 && heldByB.every((inode) => !heldByA.has(inode)), "b never got one of a's");
  });

  it("does not lend again the memfd of a call that timed out (the extension may read it later)", async (t) => {
    if (NO_FDS) return t.skip(NO_FDS);
    const late = await a!.call("slow", [pattern(MiB, 1), 0.5], { timeoutMs: 100 }).then(
      () => assert.fail("the call should have timed out"),
      (error: unknown) => error,
    );
    assert.ok(late instanceof CallAbortedError);
    const inodes = (await a!.call("inodes")) as number[];
    const abandoned = inodes.at(-1)!;
    const digest = (await a!.call("digest", [pattern(MiB, 2)])) as Digest;
    assert.equal(digest.sha256, sha256(pattern(MiB, 2)));
    assert.notEqual(digest.inode, abandoned);
  });
});
