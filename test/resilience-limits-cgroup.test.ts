// The cgroup v2 layer's pure parts (mount, own path, settings, the parent's judgement), the doctor's row, and the real
// cgroup, which runs only where the host can make a child cgroup with the memory and pids controllers.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { ExtensionLimitError } from "../src/index.js";
import {
  cgroup2Mount,
  cgroupV2Settings,
  judgeCgroupParent,
  neededControllers,
  ownCgroupPath,
  probeCgroupV2,
} from "../src/limits/cgroup-v2.js";
import { limitSupport } from "../src/limits/mechanisms.js";
import type { DoctorFacts } from "../src/doctor/collect.js";
import { buildDoctorReport } from "../src/doctor/report.js";
import { formatDoctorText } from "../src/doctor/format.js";
import { fixture, makeManager } from "./helpers.js";

const MIB = 1024 * 1024;
const V2_MOUNTINFO =
  "25 30 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate\n";
const V1_MOUNTINFO = "31 25 0:27 / /sys/fs/cgroup/memory rw,nosuid shared:12 - cgroup cgroup rw,memory\n";

describe("cgroup v2, pure parts", () => {
  it("finds the cgroup2 mount and this process's path, and nothing on a v1 host", () => {
    assert.equal(cgroup2Mount(V1_MOUNTINFO + V2_MOUNTINFO), "/sys/fs/cgroup");
    assert.equal(cgroup2Mount(V1_MOUNTINFO), undefined);
    assert.equal(
      ownCgroupPath("12:memory:/docker/x\n0::/user.slice/user-1000.slice/app.scope\n"),
      "/user.slice/user-1000.slice/app.scope",
    );
    assert.equal(ownCgroupPath("12:memory:/docker/x\n"), undefined);
  });

  it("writes memory.max with swap closed and the group killed as one, and pids.max with the sandbox's own processes added", () => {
    assert.deepEqual(cgroupV2Settings({ memoryMiB: 256, pids: 8, cpuSeconds: 3 }, 2), {
      "memory.max": String(256 * MIB),
      "memory.swap.max": "0",
      "memory.oom.group": "1",
      "pids.max": "10",
    });
    assert.deepEqual(neededControllers({ openFiles: 10, diskMiB: 5 }), [], "descriptors and disk have no controller");
    assert.deepEqual(neededControllers({ memoryMiB: 100, pids: 4 }), ["memory", "pids"]);
  });

  it("takes a parent only when it is writable and has the controllers enabled for its children", () => {
    assert.equal(judgeCgroupParent("cpu memory pids\n", true, ["memory", "pids"]), undefined);
    assert.match(judgeCgroupParent("cpu memory", true, ["memory", "pids"])!, /pids are not enabled/);
    assert.match(judgeCgroupParent("memory pids", false, ["memory"])!, /not writable/);
    assert.match(judgeCgroupParent(undefined, true, ["memory"])!, /no cgroup v2/);
  });
});

describe("pyisolate doctor's limits row", () => {
  const FIXTURE = path.join(
    path.dirname(fileURLToPath(import.meta.url)),
    "fixtures",
    "sandbox",
    "doctor",
    "ubuntu-gpu.json",
  );
  const facts = (JSON.parse(readFileSync(FIXTURE, "utf8")) as { facts: DoctorFacts }).facts;

  it("says which mechanism enforces each limit with and without cgroup v2", () => {
    const v1 = buildDoctorReport({
      ...facts,
      cgroup: { reason: "no cgroup v2 (cgroup v1 only, or no cgroup2 mount)" },
    });
    assert.equal(v1.limits.status, "degraded");
    assert.deepEqual(v1.limits.enforcedBy.pids, ["watchdog (processes of the tree)"]);
    assert.ok(
      Object.values(v1.limits.enforcedBy).every((list) => list.length > 0),
      "every limit has a mechanism",
    );
    assert.match(formatDoctorText(v1), /Resource limits\s+degraded\s+no cgroup v2: no cgroup v2 \(cgroup v1 only/);
    const v2 = buildDoctorReport({ ...facts, cgroup: { parent: "/sys/fs/cgroup/app" } });
    assert.equal(v2.limits.status, "full");
    assert.equal(v2.limits.enforcedBy.memoryMiB[0], "cgroup v2 memory.max");
    assert.deepEqual(
      limitSupport({ reason: "x" }, true).enforcedBy.diskMiB[0],
      "bwrap --size (private /tmp, /dev/shm)",
    );
  });

  it("probes this host as its /proc says", async () => {
    const where = await probeCgroupV2();
    const mounted = cgroup2Mount(readFileSync("/proc/self/mountinfo", "utf8")) !== undefined;
    if (!mounted) assert.ok("reason" in where && /no cgroup v2/.test(where.reason), JSON.stringify(where));
    else assert.ok("parent" in where || /writable|not enabled/.test(where.reason), JSON.stringify(where));
  });
});

const probe = await probeCgroupV2();
describe(
  "cgroup v2 for real",
  { skip: "reason" in probe && `this host gives no child cgroup: ${probe.reason}` },
  () => {
    const manager = makeManager();
    after(() => manager.close());

    it("the kernel bounds the tree's memory: an OOM kill in the extension's cgroup is its memoryMiB limit", async () => {
      const ext = await manager.load({
        name: "res_limits_cgroup",
        modulePath: fixture("res_limits_ext"),
        sandbox: { mode: "disabled" },
        limits: { memoryMiB: 200 },
      });
      try {
        const error = await ext.call("tree_memory", [3, 100, 20]).catch((e: unknown) => e);
        assert.ok(error instanceof ExtensionLimitError && error.limit === "memoryMiB", String(error));
      } finally {
        await ext.stop();
      }
    });
  },
);
