// Received bytes memfds are mapped, not copied: a real extension sends one sealed against write, shrink and grow;
// the host's Uint8Array is a private mapping of it (seen in /proc/self/maps), a host write to it never reaches the
// extension's file, and the mapping goes away once the array is collected. (The write seal is required: see
// bytes-hostile.test.ts for the memfd without it, refused with a ProtocolError.)

import assert from "node:assert/strict";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { setImmediate as tick } from "node:timers/promises";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { Extension } from "../src/index.js";
import { MAP_MIN_BYTES } from "../src/rpc/bytes-fd.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import type { SandboxCapabilities } from "../src/sandbox/types.js";
import { nativeStatus } from "../src/tensor/native.js";
import { fixture, makeManager } from "./helpers.js";
import { SANDBOX_MODES, unavailableMode } from "./sandbox-modes.js";

const MODULE = fixture("bytes_hostile");
const MiB = 1024 * 1024;
const NO_MAP = !nativeStatus.available
  ? `the native addon is unavailable (${nativeStatus.reason}): bytes are copied, not mapped`
  : nativeStatus.addon.mapSealed === undefined
    ? `the loaded addon (${nativeStatus.path}) predates mapSealed: bytes are copied`
    : undefined;

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** The host's mappings of the memfd named `name` (lines of /proc/self/maps). */
function mappingsOf(name: string): string[] {
  return readFileSync("/proc/self/maps", "utf8")
    .split("\n")
    .filter((line) => line.includes(`/memfd:${name} `));
}

const manager = makeManager();
let caps: SandboxCapabilities;
before(async () => {
  caps = await detectSandbox();
});
after(() => manager.close());

/** Has `ext` send a kept, sealed memfd of `size` bytes named `name`; resolves to the bytes the host received. */
async function receive(ext: Extension, name: string, size: number): Promise<Uint8Array> {
  const arrived = once(ext, "bytes");
  assert.equal(await ext.call("send_kept", [name, size]), "sent");
  const [payload] = (await arrived) as [Uint8Array];
  assert.ok(payload instanceof Uint8Array && payload.byteLength === size, `${size} bytes arrived`);
  return payload;
}

for (const mode of SANDBOX_MODES) {
  describe(`received bytes memfds with ${mode.label}`, () => {
    let ext: Extension | undefined;
    let skip: string | undefined;
    before(async () => {
      if (caps === undefined) caps = await detectSandbox();
      skip = NO_MAP ?? unavailableMode(caps, mode.sandbox);
      if (skip === undefined)
        ext = await manager.load({ name: `bytes_mapped_${mode.tag}`, modulePath: MODULE, sandbox: mode.sandbox });
    });
    after(() => ext?.stop());

    it("are a private mapping: a host write changes the host's copy only, never the extension's file", async (t) => {
      if (skip !== undefined) return t.skip(skip);
      const name = `cow-${mode.tag}`;
      const payload = await receive(ext!, name, 2 * MiB);
      assert.equal(mappingsOf(name).length, 1, "the bytes are a mapping of the memfd, not a copy");
      assert.match(mappingsOf(name)[0]!, / rw-p /, "mapped private and writable");
      assert.deepEqual([...payload.subarray(0, 4)], [0, 1, 2, 3]);
      payload.fill(0xab, 0, 8);
      payload[2 * MiB - 1] = 7;
      assert.deepEqual([...payload.subarray(0, 3)], [0xab, 0xab, 0xab], "the host sees its own write");
      const [head] = (await ext!.call("kept_head", [name, 8])) as number[][];
      assert.deepEqual(head, [0, 1, 2, 3, 4, 5, 6, 7], "the extension's memfd still holds what it wrote");
    });
  });
}

describe("small received bytes", () => {
  it("are copied, not mapped, below MAP_MIN_BYTES: many small values cannot use up the host's mappings", async (t) => {
    if (NO_MAP !== undefined) return t.skip(NO_MAP);
    const ext = await manager.load({ name: "bytes_mapped_small", modulePath: MODULE, sandbox: { mode: "disabled" } });
    try {
      const small = await receive(ext, "small-copied", MAP_MIN_BYTES - 1);
      assert.deepEqual(mappingsOf("small-copied"), [], "no mapping of the small memfd");
      assert.equal(small[1000], 1000 % 256, "the copy holds what the extension wrote");
      await receive(ext, "large-mapped", MAP_MIN_BYTES);
      assert.equal(mappingsOf("large-mapped").length, 1, "from MAP_MIN_BYTES on it is mapped");
    } finally {
      await ext.stop();
    }
  });
});

describe("a received bytes mapping's lifetime", () => {
  it("is unmapped once the host's Uint8Array is garbage-collected", async (t) => {
    if (NO_MAP !== undefined) return t.skip(NO_MAP);
    const ext = await manager.load({ name: "bytes_mapped_gc", modulePath: MODULE, sandbox: { mode: "disabled" } });
    try {
      const name = "gc-lifetime";
      let payload: Uint8Array | undefined = await receive(ext, name, 4 * MiB);
      assert.equal(mappingsOf(name).length, 1, "mapped while the array lives");
      assert.equal(payload[4 * MiB - 1], 255);
      payload = undefined;
      for (let i = 0; i < 50 && mappingsOf(name).length > 0; i++) {
        gc();
        await tick();
      }
      assert.deepEqual(mappingsOf(name), [], "the mapping was released with the array");
    } finally {
      await ext.stop();
    }
  });
});
