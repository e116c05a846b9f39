// The one init message builder (src/lifecycle/init-message.ts), and what it changes for a remote guest: the frame
// limits reach it, so it refuses an oversized message itself with a ValueError, as a local guest does, instead of
// sending it and being stopped with a ProtocolError.

import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { ConfigError, RemoteError, type Extension } from "../src/index.js";
import { buildInit, DEFAULT_IDLE_POLL_MICROS, MAX_IDLE_POLL_MICROS } from "../src/lifecycle/init-message.js";
import { DEFAULT_LIMITS } from "../src/rpc/limits.js";
import { PROTOCOL_VERSION } from "../src/rpc/protocol.js";
import { loadRemote } from "../src/remote/slot.js";
import { localJob } from "./remote-job.js";
import { fixture, makeManager } from "./helpers.js";

describe("buildInit", () => {
  it("carries every field, the four frame limits the guest checks and none of the host-only ones", () => {
    const init = buildInit({
      name: "ext",
      modulePath: "/ext",
      extensionClass: undefined,
      tensors: { transport: "copy" },
      limits: { ...DEFAULT_LIMITS, maxFrameBytes: 4096, maxAttachments: 3 },
      services: ["Chat"],
      inferenceMode: false,
    });
    assert.deepEqual(init, {
      k: "init",
      v: PROTOCOL_VERSION,
      name: "ext",
      modulePath: "/ext",
      extensionClass: null,
      tensors: { transport: "copy" },
      limits: {
        maxFrameBytes: 4096,
        maxHeaderBytes: DEFAULT_LIMITS.maxHeaderBytes,
        maxAttachments: 3,
        maxFdsPerFrame: DEFAULT_LIMITS.maxFdsPerFrame,
      },
      services: ["Chat"],
      inferenceMode: false,
      idlePollUs: DEFAULT_IDLE_POLL_MICROS,
      batch: true,
    });
    const named = buildInit({ ...init, extensionClass: "pkg:Cls", limits: DEFAULT_LIMITS, inferenceMode: true });
    assert.equal(named.extensionClass, "pkg:Cls");
    assert.equal(named.inferenceMode, true);
    assert.equal(
      buildInit({ ...init, extensionClass: undefined, limits: DEFAULT_LIMITS, idlePollMicros: 0 }).idlePollUs,
      0,
    );
  });
});

describe("idlePollMicros", () => {
  const manager = makeManager();
  after(() => manager.close());

  it("reaches the guest's event loop, the default when not given", async () => {
    const polls: number[] = [];
    for (const idlePollMicros of [undefined, 0, 250]) {
      const ext = await manager.load({
        name: `idle_poll_${idlePollMicros ?? "default"}`,
        modulePath: fixture("echo_ext"),
        sandbox: { mode: "disabled" },
        idlePollMicros,
      });
      polls.push(Math.round(((await ext.call("idle_poll")) as number) * 1e6));
    }
    assert.deepEqual(polls, [DEFAULT_IDLE_POLL_MICROS, 0, 250]);
  });

  it("is a whole number of microseconds up to MAX_IDLE_POLL_MICROS", async () => {
    for (const idlePollMicros of [-1, 1.5, MAX_IDLE_POLL_MICROS + 1, "50", Infinity]) {
      await assert.rejects(
        manager.load({
          name: "idle_poll_bad",
          modulePath: fixture("echo_ext"),
          idlePollMicros: idlePollMicros as number,
        }),
        (e: unknown) => e instanceof ConfigError && /idlePollMicros must be a whole number/.test(e.message),
        String(idlePollMicros),
      );
    }
  });
});

const LIMIT = 64 * 1024;

/** A result past the frame limit is refused in Python (ValueError), and the extension serves on. */
async function refusesInPython(ext: Extension): Promise<void> {
  const error = await ext.call("make_bytes", [2 * LIMIT]).catch((e: unknown) => e);
  assert.ok(error instanceof RemoteError, `expected a RemoteError, got ${String(error)}`);
  assert.equal(error.remoteType, "ValueError");
  assert.match(error.message, new RegExp(`exceeds the frame limit of ${LIMIT} bytes \\(host limit maxFrameBytes\\)`));
  assert.equal(ext.state, "ready");
  assert.equal(((await ext.call("make_bytes", [LIMIT / 2])) as Uint8Array).length, LIMIT / 2, "it serves on");
}

describe("the frame limits reach every guest", () => {
  const manager = makeManager();
  after(() => manager.close());

  it("a remote-session guest refuses an oversized result in Python with a ValueError, and serves on", async () => {
    const ext = await loadRemote(manager, {
      name: "init_remote",
      modulePath: "/nowhere/on/the/host",
      launch: async (env) => localJob(env),
      protocolLimits: { maxFrameBytes: LIMIT },
    });
    await refusesInPython(ext);
  });

  it("a local guest does the same (the control)", async () => {
    const ext = await manager.load({
      name: "init_local",
      modulePath: fixture("echo_ext"),
      sandbox: { mode: "disabled" },
      protocolLimits: { maxFrameBytes: LIMIT },
    });
    await refusesInPython(ext);
  });
});
