// Bytes with real processes: 1 MB and 50 MB byte-identical both ways (argument, result, nested in lists and dicts),
// arriving in Python as `bytes`, by memfd (threshold) and in the frame (Infinity), under bwrap, Landlock and no
// sandbox; the guest sends by fd exactly from the threshold on; and its RSS comes back after a 50 MB echo.

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import type { Extension } from "../src/index.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import type { SandboxCapabilities } from "../src/sandbox/types.js";
import { nativeStatus } from "../src/tensor/native.js";
import { fixture, makeManager } from "./helpers.js";
import { SANDBOX_MODES, unavailableMode } from "./sandbox-modes.js";

const MODULE = fixture("bytes_echo");
const MB = 1 << 20;
const NO_FDS = nativeStatus.available
  ? undefined
  : `the native addon is unavailable (${nativeStatus.reason}): bytes stay in the frame`;
/** The issue's bound: the extension's RSS after a 50 MB echo within 10 MB of idle (a coarse bound, not a timing). */
const RSS_SLACK_KIB = 10 * 1024;

/** The fixture's pattern: the block (i * 7 + seed) % 256 for i in 0..255, repeated. */
function pattern(size: number, seed: number): Buffer {
  const block = Buffer.from(Array.from({ length: 256 }, (_, i) => (i * 7 + seed) % 256));
  const out = Buffer.allocUnsafe(size);
  for (let at = 0; at < size; at += 256) block.copy(out, at, 0, Math.min(256, size - at));
  return out;
}

/**
 * The Python process's RSS in KiB: read by the extension itself (under bwrap its pid is not ours to read), or, where
 * Landlock keeps /proc/self from it, by the host (without bwrap, ext.pid is the Python process).
 */
async function rssKiB(ext: Extension): Promise<number> {
  try {
    return (await ext.call("rss_kib")) as number;
  } catch (error) {
    if (!/PermissionError/.test(String(error)) || ext.pid === undefined) throw error;
    return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${ext.pid}/status`, "ascii"))![1]);
  }
}

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");
const same = (got: unknown, want: Uint8Array): boolean => got instanceof Uint8Array && Buffer.compare(got, want) === 0;

let caps: SandboxCapabilities;
const manager = makeManager();
before(async () => {
  caps = await detectSandbox();
});
after(() => manager.close());

// The memfd path under every sandbox (it passes fds through the sandbox); the in-frame path once, unsandboxed.
const PATHS = [
  ...SANDBOX_MODES.map((mode) => ({ ...mode, path: "by memfd", threshold: 64 * 1024 })),
  { ...SANDBOX_MODES[0]!, path: "in the frame", threshold: Infinity },
];

for (const p of PATHS) {
  describe(`bytes ${p.path} with ${p.label}`, () => {
    let ext: Extension | undefined;
    let skip: string | undefined;
    /** The extension's RSS right after its start, before any bytes crossed. */
    let idle = 0;
    before(async () => {
      if (caps === undefined) caps = await detectSandbox();
      skip = (p.threshold === Infinity ? undefined : NO_FDS) ?? unavailableMode(caps, p.sandbox);
      if (skip === undefined) {
        ext = await manager.load({
          name: `bytes_echo_${p.tag}_${p.threshold}`,
          modulePath: MODULE,
          sandbox: p.sandbox,
          bytesMemfdThreshold: p.threshold,
        });
        idle = await rssKiB(ext);
      }
    });
    after(() => ext?.stop());

    it("echoes 1 MB and 50 MB byte-identical, and Python receives them as bytes", async (t) => {
      if (skip !== undefined) return t.skip(skip);
      for (const size of [MB, 50 * MB]) {
        const data = randomBytes(size);
        assert.deepEqual(await ext!.call("describe", [data]), { type: "bytes", len: size, sha256: sha256(data) });
        assert.ok(same(await ext!.call("echo", [data]), data), `the ${size}-byte echo came back identical`);
      }
    });

    it("returns 1 MB and 50 MB made in Python byte-identical, from bytes, bytearray and memoryview", async (t) => {
      if (skip !== undefined) return t.skip(skip);
      for (const [size, kind] of [
        [MB, "bytes"],
        [50 * MB, "bytes"],
        [MB, "bytearray"],
        [MB, "memoryview"],
      ] as const) {
        assert.ok(same(await ext!.call("make", [size, 3, kind]), pattern(size, 3)), `${size} bytes as ${kind}`);
      }
    });

    it("carries bytes nested in lists and dicts both ways, beside small ones in the frame", async (t) => {
      if (skip !== undefined) return t.skip(skip);
      const got = (await ext!.call("make_nested", [MB])) as {
        list: [Uint8Array, { inner: Uint8Array }];
        small: Uint8Array;
        n: number;
      };
      assert.ok(same(got.list[0], pattern(MB, 1)) && same(got.list[1].inner, pattern(MB, 2)), "the nested 1 MB values");
      assert.ok(same(got.small, Buffer.from("xy")) && got.n === 3);
      const sent = { a: [randomBytes(MB), { b: randomBytes(2 * MB) }], tiny: new Uint8Array([1, 2]) };
      const described = (await ext!.call("describe", [sent])) as {
        a: [{ sha256: string; type: string }, { b: { sha256: string } }];
        tiny: { len: number; type: string };
      };
      assert.equal(described.a[0].sha256, sha256(sent.a[0] as Uint8Array));
      assert.equal(described.a[0].type, "bytes");
      assert.equal(described.a[1].b.sha256, sha256((sent.a[1] as { b: Uint8Array }).b));
      assert.deepEqual(described.tiny, { type: "bytes", len: 2, sha256: sha256(sent.tiny) });
    });

    it("echoes distinct 6 MB values in turn and 12 at once, each byte-identical (pooled memfds and bytes reused)", async (t) => {
      if (skip !== undefined) return t.skip(skip);
      for (let i = 0; i < 4; i++) {
        const data = randomBytes(6 * MB);
        assert.ok(same(await ext!.call("echo", [data]), data), `echo ${i} came back identical`);
      }
      // More at once than the guest's pool holds (8): the rest go in fresh memfds.
      const many = Array.from({ length: 12 }, () => randomBytes(6 * MB));
      const echoed = await Promise.all(many.map((data) => ext!.call("echo", [data])));
      echoed.forEach((got, i) => assert.ok(same(got, many[i]!), `concurrent echo ${i} came back identical`));
    });

    it("never refills a received value the extension still holds, and its hash stays right", async (t) => {
      if (skip !== undefined) return t.skip(skip);
      const values = Array.from({ length: 3 }, () => randomBytes(6 * MB));
      for (const value of values) assert.equal(await ext!.call("keep", [value]), sha256(value));
      for (let i = 0; i < 3; i++) await ext!.call("describe", [randomBytes(6 * MB)]); // same size, not kept
      const kept = (await ext!.call("kept")) as { sha256: string; hash_ok: boolean }[];
      assert.deepEqual(
        kept,
        values.map((value) => ({ sha256: sha256(value), hash_ok: true })),
      );
      await ext!.call("drop_kept");
    });

    it("brings the extension's RSS back within 10 MB of its idle RSS after 50 MB echoes", async (t) => {
      if (skip !== undefined) return t.skip(skip);
      const data = randomBytes(50 * MB);
      for (let i = 0; i < 3; i++) assert.ok(same(await ext!.call("echo", [data]), data));
      // In the frame, the guest gives its grown buffers back 50 ms after the last large frame (trim.py); by memfd, its
      // pool and its kept bytes let go of theirs after 1 s idle (bytes_pool.py, reused_bytes.py): polled, bounded.
      let afterEcho = await rssKiB(ext!);
      for (let i = 0; i < 80 && afterEcho - idle >= RSS_SLACK_KIB; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        afterEcho = await rssKiB(ext!);
      }
      t.diagnostic(
        `extension RSS ${(idle / 1024).toFixed(1)} MiB idle, ${(afterEcho / 1024).toFixed(1)} MiB after three 50 MB echoes`,
      );
      assert.ok(afterEcho - idle < RSS_SLACK_KIB, `RSS grew ${afterEcho - idle} KiB`);
    });
  });
}

describe("a call's own task", () => {
  it("binds asyncio.timeout in an extension method to the call, so its expiry leaves the connection serving", async () => {
    const ext = await manager.load({ name: "bytes_echo_timeout", modulePath: MODULE, sandbox: { mode: "disabled" } });
    try {
      assert.equal(await ext.call("times_out"), "timed out");
      assert.ok(same(await ext.call("echo", [Buffer.from("still here")]), Buffer.from("still here")));
      assert.equal(ext.state, "ready");
    } finally {
      await ext.stop();
    }
  });
});

describe("where the guest sends bytes by memfd", () => {
  it("sends bytes from the threshold on by fd and below it in the frame (maxFdsPerFrame 0 refuses only the former)", async (t) => {
    if (NO_FDS !== undefined) return t.skip(NO_FDS);
    const ext = await manager.load({
      name: "bytes_echo_threshold",
      modulePath: MODULE,
      sandbox: { mode: "disabled" },
      bytesMemfdThreshold: 4096,
      protocolLimits: { maxFdsPerFrame: 0 },
    });
    try {
      assert.ok(same(await ext.call("make", [4095, 5]), pattern(4095, 5)), "4095 bytes ride in the frame");
      await assert.rejects(
        ext.call("make", [4096, 5]),
        /ValueError: message file descriptors: 1 exceeds the host's limit maxFdsPerFrame = 0/,
      );
      assert.equal(ext.state, "ready", "an honest extension refused by its own writer keeps running");
    } finally {
      await ext.stop();
    }
  });
});
