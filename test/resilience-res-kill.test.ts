// A SIGKILL always surfaces as ExtensionCrashedError: with a big frame in flight either way, and for a call made after
// the RPC socket ended but before the exit was known (the window where it used to be ExtensionClosedError).

import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, describe, it } from "node:test";
import { ExtensionCrashedError, type Extension } from "../src/index.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import type { SandboxCapabilities } from "../src/sandbox/types.js";
import { fixture, makeManager } from "./helpers.js";
import { SANDBOX_MODES, unavailableMode } from "./sandbox-modes.js";

const MIB = 1024 * 1024;
let caps: SandboxCapabilities;
const manager = makeManager();
before(async () => {
  caps = await detectSandbox();
});
after(() => manager.close());

/** Resolves on the first stderr line equal to `line`. */
function stderrLine(ext: Extension, line: string): Promise<void> {
  return new Promise((resolve) => {
    const on = (got: string) => {
      if (got !== line) return;
      ext.off("stderr", on);
      resolve();
    };
    ext.on("stderr", on);
  });
}

function assertCrashed(error: unknown, what: string): void {
  assert.ok(error instanceof ExtensionCrashedError, `${what}: ${String(error)}`);
  assert.equal(error.signal, "SIGKILL", what);
}

for (const mode of SANDBOX_MODES) {
  describe(`a SIGKILL under ${mode.label}`, () => {
    let skip: string | undefined;
    const load = (suffix: string) =>
      manager.load({
        name: `res_res_kill_${mode.tag}_${suffix}`,
        modulePath: fixture("res_res_kill"),
        sandbox: mode.sandbox,
      });
    before(() => {
      skip = unavailableMode(caps, mode.sandbox);
    });

    it("rejects a call whose 64 MiB answer is in flight with ExtensionCrashedError", async (t) => {
      if (skip) return t.skip(skip);
      const ext = await load("answer");
      const sending = stderrLine(ext, "sending");
      const call = ext.call("big", [64]).catch((e: unknown) => e);
      await sending;
      process.kill(ext.pid!, "SIGKILL");
      assertCrashed(await call, "the big answer");
    });

    it("rejects a call whose 64 MiB argument is being written with ExtensionCrashedError, and one made just after", async (t) => {
      if (skip) return t.skip(skip);
      const ext = await load("argument");
      assert.equal(await ext.call("nbytes", [new Uint8Array(MIB)]), MIB);
      const exit = once(ext, "exit");
      // The socket takes a few hundred KiB; the rest is still queued in the host when the kill lands.
      const call = ext.call("nbytes", [new Uint8Array(64 * MIB)]).catch((e: unknown) => e);
      process.kill(ext.pid!, "SIGKILL");
      const next = ext.call("echo", ["after the kill"]).catch((e: unknown) => e);
      assertCrashed(await call, "the big argument");
      assertCrashed(await next, "the call made after the kill");
      await exit;
    });

    it("holds a call made after the socket ended until the exit, then rejects it with ExtensionCrashedError", async (t) => {
      if (skip) return t.skip(skip);
      const ext = await load("shut");
      const shut = stderrLine(ext, "shut");
      const blocked = ext.call("shut_rpc").catch((e: unknown) => e);
      await shut;
      // Time for the host to read the socket's end (the guest is blocked in time.sleep and cannot exit meanwhile).
      await new Promise((resolve) => setTimeout(resolve, 300));
      let settled = false;
      const held = ext
        .call("echo", ["held"])
        .catch((e: unknown) => e)
        .finally(() => void (settled = true));
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(settled, false, "the call waits for the exit instead of failing on the closed socket");
      process.kill(ext.pid!, "SIGKILL");
      assertCrashed(await blocked, "the call in flight");
      assertCrashed(await held, "the call made after the socket ended");
    });
  });
}
