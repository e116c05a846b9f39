// RLIMIT_NPROC under bwrap for an unprivileged host: the kernel counts a uid's tasks per user namespace, so the pids
// limit gets a hard bound (pids + slack) that a fork loop meets at once, between the watchdog's samples.

import assert from "node:assert/strict";
import { availableParallelism, release } from "node:os";
import { after, before, describe, it } from "node:test";
import { nprocSlack, rlimitsFor } from "../src/limits/rlimits.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import type { SandboxCapabilities } from "../src/sandbox/types.js";
import { fixture, makeManager } from "./helpers.js";
import { SANDBOX_MODES, unavailableMode } from "./sandbox-modes.js";

const scope = { ownUserNamespace: true, uid: 1000, kernelRelease: "6.18.0-x", cpus: 2 };

describe("RLIMIT_NPROC for the pids limit (pure)", () => {
  it("applies only in a user namespace of its own, for a non-root uid, on Linux 5.14 or later", () => {
    assert.equal(nprocSlack(scope), 1 + 2 * 2 + 32);
    assert.equal(
      nprocSlack({ ...scope, cpus: 64 }),
      1 + 2 * 64 + 32,
      "the threads libraries start grow with the cores",
    );
    assert.equal(
      nprocSlack({ ...scope, ownUserNamespace: false }),
      undefined,
      "outside one it counts the host's processes too",
    );
    assert.equal(nprocSlack({ ...scope, uid: 0 }), undefined, "root's forks are never checked");
    assert.equal(
      nprocSlack({ ...scope, kernelRelease: "5.13.19" }),
      undefined,
      "before 5.14 the count is per uid, machine-wide",
    );
    assert.equal(nprocSlack({ ...scope, kernelRelease: "5.14.0" }), 37);
  });

  it("maps pids to RLIMIT_NPROC = pids + slack only where a slack is given", () => {
    assert.deepEqual(rlimitsFor({ pids: 8 }, 37), { RLIMIT_NPROC: [45, 45] });
    assert.deepEqual(rlimitsFor({ pids: 8 }), {});
    assert.deepEqual(rlimitsFor({ memoryMiB: 256 }, 37), { RLIMIT_DATA: [256 * 2 ** 20, 256 * 2 ** 20] });
  });
});

describe("an extension under bwrap with pids: 4, run by an unprivileged host", () => {
  const manager = makeManager();
  let caps: SandboxCapabilities;
  let skip: string | undefined;
  const bwrap = SANDBOX_MODES.find((mode) => mode.tag === "bwrap")!;
  const slack = nprocSlack({
    ownUserNamespace: true,
    uid: process.getuid?.(),
    kernelRelease: release(),
    cpus: availableParallelism(),
  });
  before(async () => {
    caps = await detectSandbox();
    skip =
      unavailableMode(caps, bwrap.sandbox) ??
      (process.getuid?.() === 0
        ? "run as root: the kernel never checks RLIMIT_NPROC for kuid 0 (the unprivileged pass runs it)"
        : undefined) ??
      (slack === undefined
        ? `kernel ${release()}: RLIMIT_NPROC is not counted per user namespace before 5.14`
        : undefined);
  });
  after(() => manager.close());

  it("can start only pids + slack tasks, counted in its own namespace (the control, without pids, starts 300)", async (t) => {
    if (skip) return t.skip(skip);
    const load = (name: string, limits?: { pids: number }) =>
      manager.load({ name, modulePath: fixture("res_res_nproc"), sandbox: bwrap.sandbox, limits });
    const control = await load("res_res_nproc_free");
    assert.equal(await control.call("threads", [300]), 300);
    const bounded = await load("res_res_nproc_bound", { pids: 4 });
    const started = (await bounded.call("threads", [300])) as number;
    t.diagnostic(`pids 4 + slack ${slack!}: ${started} threads started`);
    // Its tasks: bwrap's pid 1, Python's main thread and the runtime's few, then these threads; the host's own
    // threads (node runs a dozen as this user) are outside the namespace and do not count.
    assert.ok(started <= 4 + slack! - 2, `started ${started} threads, past pids + slack = ${4 + slack!}`);
    assert.ok(
      started >= 4 + slack! - 10,
      `started only ${started} threads: the count holds more than the namespace's tasks`,
    );
  });
});
