// Attack: a `setsid` double-fork daemon that ignores SIGTERM and SIGHUP, started from inside an extension. It must be
// dead after stop, close, a crash and a SIGKILL of the host, under bwrap, under Landlock and with the sandbox disabled
// (no control may let it live: children never outlive the host). Checked from outside, by the daemon's host pid.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import type { Extension, SandboxOptions } from "../src/index.js";
import { ExtensionCrashedError } from "../src/index.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import type { SandboxCapabilities } from "../src/sandbox/types.js";
import { fixture, isAlive, makeManager, TEST_DIR, waitFor } from "./helpers.js";

const MODULE = fixture("trust_confine_ext");
const HOST_SCRIPT = fixture("trust_confine_host/host.ts");
const MODES: Record<string, SandboxOptions> = {
  disabled: { mode: "disabled" },
  bwrap: { mode: "required", backend: "bwrap" },
  landlock: { mode: "required", backend: "landlock" },
};

/** Before the supervisor, a daemon holding the extension's stdout kept stop() and close() waiting forever. */
const CASE_TIMEOUT_MS = 60_000;

let caps: SandboxCapabilities;
const leftovers: number[] = [];

before(async () => {
  caps = await detectSandbox();
});
after(() => {
  for (const pid of leftovers) if (isAlive(pid)) process.kill(pid, "SIGKILL"); // a failed case must not leave it running
});

/** Host pids whose command line carries `token`: the daemon, whichever PID namespace it was started in. */
function pidsWith(token: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0").includes(token)) found.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** A field of /proc/<pid>/stat after the command name: 0 state, 1 ppid, 2 pgrp, 3 session. */
function statField(pid: number, index: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[index]!;
}

function sessionOf(pid: number): string {
  return statField(pid, 3);
}

/** Starts the daemon and returns its host pid, after checking it really left the extension's session. */
async function startDaemon(ext: Extension, mode: string): Promise<number> {
  const token = `pyisolate-daemon-${randomUUID()}`;
  await ext.call("start_daemon", [token]);
  let pids: number[] = [];
  await waitFor(() => (pids = pidsWith(token)).length === 1, 10_000, "the daemon to appear");
  const daemon = pids[0]!;
  leftovers.push(daemon);
  assert.notEqual(sessionOf(daemon), sessionOf(ext.pid!), "the daemon left the extension's session");
  // Orphaned, it was re-parented to the nearest subreaper: the guest's supervisor (the extension's parent), not init.
  if (mode !== "bwrap") assert.equal(statField(daemon, 1), statField(ext.pid!, 1), "the supervisor adopted the daemon");
  return daemon;
}

function skipWhy(mode: string): string | undefined {
  if (mode === "bwrap" && caps.backend !== "bwrap")
    return `bwrap cannot run with every namespace here (model ${caps.model})`;
  if (mode === "landlock" && caps.landlockAbi < 6)
    return `Landlock ABI ${caps.landlockAbi} < 6: the supervisor is not protected from signals`;
  return undefined;
}

for (const [mode, sandbox] of Object.entries(MODES)) {
  describe(`a setsid daemon, ${mode === "disabled" ? "with the sandbox disabled" : `under ${mode}`}`, () => {
    it("dies with ext.stop()", { timeout: CASE_TIMEOUT_MS }, async (t) => {
      const why = skipWhy(mode);
      if (why) return t.skip(why);
      const manager = makeManager();
      try {
        const ext = await manager.load({ name: "trust_confine_ext", modulePath: MODULE, sandbox });
        const daemon = await startDaemon(ext, mode);
        const started = performance.now();
        await ext.stop();
        t.diagnostic(`stop took ${(performance.now() - started).toFixed(0)} ms`);
        await waitFor(() => !isAlive(daemon), 5000, `daemon ${daemon} to die after stop`);
        assert.ok(!isAlive(ext.pid!), "the extension's own process is gone");
      } finally {
        await manager.close();
      }
    });

    it("dies with manager.close()", { timeout: CASE_TIMEOUT_MS }, async (t) => {
      const why = skipWhy(mode);
      if (why) return t.skip(why);
      const manager = makeManager();
      const ext = await manager.load({ name: "trust_confine_ext", modulePath: MODULE, sandbox });
      const daemon = await startDaemon(ext, mode);
      await manager.close();
      await waitFor(() => !isAlive(daemon), 5000, `daemon ${daemon} to die after close`);
    });

    it(
      "dies when the extension crashes, and the crash still reports the exit code",
      { timeout: CASE_TIMEOUT_MS },
      async (t) => {
        const why = skipWhy(mode);
        if (why) return t.skip(why);
        const manager = makeManager();
        try {
          const ext = await manager.load({ name: "trust_confine_ext", modulePath: MODULE, sandbox });
          const daemon = await startDaemon(ext, mode);
          const error = await ext.call("die", [9]).catch((e: unknown) => e);
          assert.ok(error instanceof ExtensionCrashedError, String(error));
          assert.equal(error.exitCode, 9);
          await waitFor(() => !isAlive(daemon), 5000, `daemon ${daemon} to die after the crash`);
        } finally {
          await manager.close();
        }
      },
    );

    it("dies when the host is SIGKILLed", { timeout: CASE_TIMEOUT_MS }, async (t) => {
      const why = skipWhy(mode);
      if (why) return t.skip(why);
      const token = `pyisolate-daemon-${randomUUID()}`;
      const host = spawn(process.execPath, ["--import", "tsx", HOST_SCRIPT, JSON.stringify(sandbox), token], {
        cwd: TEST_DIR,
        stdio: ["ignore", "pipe", "inherit"],
      });
      try {
        const line = await new Promise<string>((resolve, reject) => {
          createInterface({ input: host.stdout! }).once("line", resolve);
          host.once("exit", (code) => reject(new Error(`the stand-in host exited (${code}) before loading`)));
        });
        const { ext } = JSON.parse(line) as { ext: number };
        const [daemon] = pidsWith(token);
        assert.ok(daemon, "the daemon runs");
        leftovers.push(daemon!, ext);
        host.kill("SIGKILL");
        await waitFor(
          () => !isAlive(daemon!) && !isAlive(ext),
          5000,
          `daemon ${daemon} and extension ${ext} to die with the host`,
        );
      } finally {
        host.kill("SIGKILL");
      }
    });
  });
}

describe("the supervisor is out of the extension's reach", () => {
  it("under Landlock (ABI >= 6) signalling it is EPERM; with the sandbox disabled the same probe reaches it", async (t) => {
    if (caps.landlockAbi < 6) return t.skip(`Landlock ABI ${caps.landlockAbi} < 6: no signal scoping`);
    const manager = makeManager();
    try {
      for (const [mode, expected] of [
        ["disabled", "ok"],
        ["landlock", "PermissionError"],
      ] as const) {
        const ext = await manager.load({ name: "trust_confine_ext", modulePath: MODULE, sandbox: MODES[mode]! });
        const [kind] = (await ext.call("signal_parent")) as [string, unknown];
        assert.equal(kind, expected, mode);
        await ext.stop();
      }
    } finally {
      await manager.close();
    }
  });
});
