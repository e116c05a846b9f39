// Hostile `$bytes` by fd from a real extension (raw frames on fd 3, fds on fd 4): an unsealed memfd, one without the
// write seal (the host maps what it accepts), a pipe, a size past the fd or past maxFrameBytes, an fd the frame did not
// bring, lent memfds (from the extension's pool) that are unsealed, a pipe, short or wrongly numbered, a frame
// claiming 4 GiB. Each ends the attacker with
// a ProtocolError that leads with the reason; the sealed control is accepted, and the host and a bystander carry on.

import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, describe, it } from "node:test";
import { ProtocolError, type Extension, type SandboxOptions } from "../src/index.js";
import { DEFAULT_LIMITS } from "../src/rpc/limits.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import type { SandboxCapabilities } from "../src/sandbox/types.js";
import { nativeStatus } from "../src/tensor/native.js";
import { fixture, isAlive, makeManager, waitFor } from "./helpers.js";
import { SANDBOX_MODES, unavailableMode } from "./sandbox-modes.js";

const MODULE = fixture("bytes_hostile");
const MiB = 1024 * 1024;
const NO_FDS = nativeStatus.available
  ? undefined
  : `the native addon is unavailable (${nativeStatus.reason}): no fds travel`;

interface Attack {
  title: string;
  method: string;
  args: unknown[];
  error: RegExp;
  /** Run under every sandbox mode (fd passing differs); the others run with the sandbox disabled. */
  everyMode?: boolean;
}

const ATTACKS: Attack[] = [
  {
    title: "an unsealed memfd",
    method: "send_bytes_fd",
    args: ["unsealed", MiB, MiB],
    everyMode: true,
    error: /^received bytes fd is not a memfd sealed against writing, shrinking and growing \(seals 0x0\)/,
  },
  {
    title: "a memfd sealed against shrinking and growing but not against writing",
    method: "send_bytes_fd",
    args: ["writable", MiB, MiB],
    everyMode: true,
    error: /^received bytes fd is not a memfd sealed against writing, shrinking and growing \(seals 0x6\)/,
  },
  {
    title: "a pipe",
    method: "send_bytes_fd",
    args: ["pipe", 0, 16],
    error: /^received bytes fd is (unusable|not a memfd sealed)/,
  },
  {
    title: "a sealed memfd that claims more bytes than it holds",
    method: "send_bytes_fd",
    args: ["sealed", 4096, MiB],
    error: /^received bytes fd holds 4096 bytes, less than the 1048576 declared/,
  },
  {
    title: "a sealed memfd that claims 1 TiB (nothing is allocated)",
    method: "send_bytes_fd",
    args: ["sealed", 4096, 2 ** 40],
    error: new RegExp(
      `^bytes by fd in one frame: 1099511627776 exceeds the limit maxFrameBytes = ${DEFAULT_LIMITS.maxFrameBytes}`,
    ),
  },
  {
    title: "an fd index the frame did not bring",
    method: "send_bytes_fd",
    args: ["sealed", 4096, 4096, 1],
    error: /^malformed \$bytes \{"fd":1,"size":4096\}: expected \{"fd": one of the frame's 1 fds/,
  },
  {
    title: "a lent memfd not sealed against shrinking",
    method: "send_bytes_fd",
    args: ["unsealed", MiB, MiB, 0, 1],
    everyMode: true,
    error: /^lent bytes fd is not a memfd sealed against shrinking \(seals 0x0\)/,
  },
  {
    title: "a lent pipe",
    method: "send_bytes_fd",
    args: ["pipe", 0, 16, 0, 1],
    error: /^(received bytes fd is unusable|lent bytes fd is not a memfd)/,
  },
  {
    title: "a lent memfd that claims more bytes than it holds",
    method: "send_bytes_fd",
    args: ["writable", 4096, MiB, 0, 1],
    error: /^lent bytes fd holds 4096 bytes, less than the 1048576 declared/,
  },
  {
    title: "a lent number that is not a positive integer",
    method: "send_bytes_fd",
    args: ["writable", 4096, 4096, 0, 0],
    error: /^malformed \$bytes \{"fd":0,"size":4096,"lent":0\}/,
  },
  {
    title: "a frame whose length prefix claims 4 GiB",
    method: "send_huge_length",
    args: [0xffff_ffff],
    error: new RegExp(`^frame bytes: 4294967295 exceeds the limit maxFrameBytes = ${DEFAULT_LIMITS.maxFrameBytes}`),
  },
];

let caps: SandboxCapabilities;
const manager = makeManager();
before(async () => {
  caps = await detectSandbox();
});
after(() => manager.close());

async function attack(sandbox: SandboxOptions, a: Attack, bystander: Extension): Promise<void> {
  const attacker = await manager.load({ name: "bytes_hostile", modulePath: MODULE, sandbox });
  try {
    // The control: the same value, sealed and truthful, arrives as the bytes it holds.
    const arrived = once(attacker, "bytes");
    assert.equal(await attacker.call("send_bytes_fd", ["sealed", MiB, MiB]), "sent");
    const [payload] = (await arrived) as [Uint8Array];
    assert.ok(
      payload instanceof Uint8Array && payload.byteLength === MiB,
      "the sealed memfd arrived as 1 MiB of bytes",
    );
    assert.deepEqual([...payload.subarray(0, 4)], [0, 1, 2, 3]);
    assert.equal(payload[MiB - 1], 255);

    const heapBefore = process.memoryUsage().heapUsed;
    const exited = once(attacker, "exit");
    const refused = await attacker.call(a.method, a.args).then(
      (value) => assert.fail(`the attack was accepted: ${JSON.stringify(value)}`),
      (error: unknown) => error,
    );
    assert.ok(refused instanceof ProtocolError, `a ProtocolError, not ${String(refused)}`);
    assert.match(refused.message, a.error);
    await exited;
    if (attacker.pid !== undefined) await waitFor(() => !isAlive(attacker.pid!), 5000, "the attacker's process to end");
    assert.ok(process.memoryUsage().heapUsed - heapBefore < 64 * MiB, "the host heap stayed bounded");
    assert.equal(typeof (await bystander.call("ping")), "number", "the other extension still answers");
  } finally {
    await attacker.stop();
  }
}

describe("bytes an extension lends from its pool", () => {
  it("arrive as the host's own copy: writing into the memfd afterwards changes nothing the host holds", async (t) => {
    if (NO_FDS) return t.skip(NO_FDS);
    const ext = await manager.load({ name: "bytes_lender", modulePath: MODULE, sandbox: { mode: "disabled" } });
    try {
      const arrived = once(ext, "bytes");
      assert.equal(await ext.call("send_lent_then_scribble", [2 * MiB, 9]), "sent");
      const [payload] = (await arrived) as [Uint8Array];
      assert.equal(payload.byteLength, 2 * MiB);
      assert.deepEqual([...payload.subarray(0, 4)], [0, 1, 2, 3], "the bytes as lent, not the 0xFF written after");
      assert.equal(payload[2 * MiB - 1], 255);
      assert.equal(payload[2 * MiB - 2], 254);
      assert.equal(typeof (await ext.call("ping")), "number", "the extension carries on");
    } finally {
      await ext.stop();
    }
  });
});

for (const mode of SANDBOX_MODES) {
  describe(`hostile bytes by fd with ${mode.label}`, () => {
    let bystander: Extension | undefined;
    let skip: string | undefined;
    before(async () => {
      if (caps === undefined) caps = await detectSandbox();
      skip = NO_FDS ?? unavailableMode(caps, mode.sandbox);
      if (skip === undefined)
        bystander = await manager.load({
          name: `bytes_hostile_bystander_${mode.tag}`,
          modulePath: MODULE,
          sandbox: mode.sandbox,
        });
    });
    after(() => bystander?.stop());

    for (const a of ATTACKS.filter((x) => x.everyMode === true || mode.tag === "none")) {
      it(`refuses ${a.title} with a ProtocolError; a sealed memfd is accepted and the host carries on`, async (t) => {
        if (skip !== undefined) return t.skip(skip);
        await attack(mode.sandbox, a, bystander!);
      });
    }
  });
}
