// Resource limits with real processes, under bwrap, under Landlock and with the sandbox disabled: each limit stops
// (or, where the kernel answers first, refuses) an extension that passes it, the error is typed, a neighbour keeps
// answering; the controls show the same extension really does each thing without the limit.

import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import {
  ExtensionLimitError,
  RemoteError,
  type Extension,
  type ResourceLimits,
  type SandboxOptions,
} from "../src/index.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import { sampleTree } from "../src/limits/proc-tree.js";
import { sandboxOverhead, usageOf } from "../src/limits/watchdog.js";
import { fixture, makeManager, waitFor } from "./helpers.js";
import { copyFixture, scratch } from "./trust-config-helpers.js";

const MODULE = fixture("res_limits_ext");
const EMFILE = 24;
const ENOSPC = 28;

const BACKENDS: { label: string; sandbox: SandboxOptions; key: "bwrap" | "landlock" | "none" }[] = [
  { label: "bwrap", sandbox: { backend: "bwrap" }, key: "bwrap" },
  { label: "Landlock", sandbox: { backend: "landlock" }, key: "landlock" },
  { label: "no sandbox", sandbox: { mode: "disabled" }, key: "none" },
];

/** Asserts that `call` rejects with an ExtensionLimitError for `limit`, and returns it. */
async function rejectsWithLimit(call: Promise<unknown>, limit: string): Promise<ExtensionLimitError> {
  const error = await call.then(
    (value) => assert.fail(`expected ${limit} to stop the extension; it answered ${JSON.stringify(value)}`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof ExtensionLimitError, `expected an ExtensionLimitError, got ${String(error)}`);
  assert.equal(error.limit, limit);
  assert.equal(error.code, "ERR_PYISOLATE_LIMIT");
  assert.ok(error.value >= error.max, `value ${error.value} against max ${error.max}`);
  return error;
}

const caps = await detectSandbox();

for (const { label, sandbox, key } of BACKENDS) {
  describe(`limits under ${label}`, () => {
    const available = key === "none" || (key === "bwrap" ? caps.backend === "bwrap" : caps.landlockAbi > 0);
    const manager = makeManager();
    let neighbour: Extension;
    const load = (limits?: ResourceLimits) =>
      manager.load({ name: `res_limits_${key}`, modulePath: MODULE, sandbox, limits });

    before(async () => {
      neighbour = await manager.load({ name: `res_limits_${key}_neighbour`, modulePath: MODULE, sandbox });
    });
    after(() => manager.close());

    /** Runs `body` on a fresh extension with `limits`, then checks the stop was typed and the neighbour untouched. */
    async function limited(limits: ResourceLimits, body: (ext: Extension) => Promise<void>): Promise<void> {
      const ext = await load(limits);
      try {
        await body(ext);
      } finally {
        await ext.stop();
      }
      assert.equal(await neighbour.call("ping"), "pong", "the neighbour still answers");
      assert.equal(neighbour.state, "ready");
    }

    it(
      "control: without limits the extension forks, allocates, burns CPU, opens files and fills its folders",
      { skip: !available && `${key} is not available here` },
      async () => {
        const ext = await load();
        try {
          // The sandbox's own processes are not the extension's: at rest it counts as one process.
          assert.equal(usageOf(sampleTree(ext.processGroup!)!, sandboxOverhead(ext.sandbox.backend)).pids, 1);
          assert.equal(await ext.call("spawn", [30, 0]), 30);
          assert.equal(await ext.call("tree_memory", [4, 80, 0]), 34);
          assert.equal(await ext.call("alloc", [400]), 400);
          assert.ok(((await ext.call("burn", [2.5])) as number) >= 2.5);
          assert.deepEqual(await ext.call("open_files", [200]), ["ok", 200]);
          assert.equal(await ext.call("tree_files", [4, 30, 0]), 38);
          assert.deepEqual(await ext.call("write", ["home", 4, 8, 0]), ["ok", 32]);
          assert.deepEqual(await ext.call("write", ["tmp", 4, 8, 0]), ["ok", 32]);
          assert.equal(ext.state, "ready");
          await ext.call("cleanup");
        } finally {
          await ext.stop();
        }
      },
    );

    it(
      "pids: forking past the limit stops the extension with ExtensionLimitError",
      { skip: !available && `${key} is not available here` },
      async () => {
        await limited({ pids: 8 }, async (ext) => {
          const error = await rejectsWithLimit(ext.call("spawn", [30, 20]), "pids");
          assert.equal(error.max, 8);
          assert.equal(error.mechanism, "watchdog");
          await waitFor(() => ext.state === "crashed", 10_000, "the stopped extension's exit");
          await assert.rejects(ext.call("ping"), ExtensionLimitError, "later calls reject with the same reason");
        });
      },
    );

    it(
      "memoryMiB: a process tree whose resident memory passes the limit is stopped",
      { skip: !available && `${key} is not available here` },
      async () => {
        await limited({ memoryMiB: 200 }, async (ext) => {
          await rejectsWithLimit(ext.call("tree_memory", [4, 80, 20]), "memoryMiB");
        });
      },
    );

    it(
      "memoryMiB: one allocation past the limit fails inside (RLIMIT_DATA) and the extension answers on",
      { skip: !available && `${key} is not available here` },
      async () => {
        await limited({ memoryMiB: 200 }, async (ext) => {
          await assert.rejects(
            ext.call("alloc", [400]),
            (e: unknown) => e instanceof RemoteError && e.remoteType === "MemoryError",
          );
          assert.equal(await ext.call("alloc", [50]), 50);
        });
      },
    );

    it(
      "cpuSeconds: a busy loop past the limit is stopped",
      { skip: !available && `${key} is not available here` },
      async (t) => {
        await limited({ cpuSeconds: 2 }, async (ext) => {
          const error = await rejectsWithLimit(ext.call("burn", [30]), "cpuSeconds");
          // The kernel's SIGXCPU (rlimit) and the watchdog's sample race for the same second; either is this limit.
          assert.ok(["rlimit", "watchdog"].includes(error.mechanism));
          t.diagnostic(`caught by the ${error.mechanism}`);
        });
      },
    );

    it(
      "openFiles: one process stops at the limit (EMFILE), a tree past it is stopped",
      { skip: !available && `${key} is not available here` },
      async () => {
        await limited({ openFiles: 64 }, async (ext) => {
          const [kind, errno, opened] = (await ext.call("open_files", [200])) as [string, number, number];
          assert.deepEqual([kind, errno], ["error", EMFILE]);
          assert.ok(opened < 64, `opened ${opened}`);
          await ext.call("cleanup");
          await rejectsWithLimit(ext.call("tree_files", [4, 30, 20]), "openFiles");
        });
      },
    );

    it(
      "diskMiB: files in the private HOME past the limit stop the extension",
      { skip: !available && `${key} is not available here` },
      async () => {
        await limited({ diskMiB: 16 }, async (ext) => {
          await rejectsWithLimit(ext.call("write", ["home", 4, 8, 20]), "diskMiB");
        });
      },
    );

    if (key === "bwrap") {
      it(
        "diskMiB: the private /tmp is a tmpfs of that size: a write past it fails with ENOSPC",
        { skip: !available && "bwrap is not available here" },
        async () => {
          await limited({ diskMiB: 16 }, async (ext) => {
            const [kind, errno, written] = (await ext.call("write", ["tmp", 4, 8, 0])) as [string, number, number];
            assert.deepEqual([kind, errno], ["error", ENOSPC]);
            assert.ok(written <= 16, `wrote ${written} MiB`);
            assert.equal(await ext.call("ping"), "pong");
          });
        },
      );
    } else {
      it(
        "diskMiB: files in the private TMPDIR past the limit stop the extension",
        { skip: !available && `${key} is not available here` },
        async () => {
          await limited({ diskMiB: 16 }, async (ext) => {
            await rejectsWithLimit(ext.call("write", ["tmp", 4, 8, 20]), "diskMiB");
          });
        },
      );
    }
  });
}

describe("limits from the extension's pyisolate.yaml", () => {
  const root = scratch("res-limits-yaml-");
  const manager = makeManager();
  after(async () => {
    await manager.close();
    root.remove();
  });

  /** A copy of the fixture whose pyisolate.yaml says `yaml`. */
  function withYaml(as: string, yaml: string): string {
    const dir = copyFixture("res_limits_ext", root.dir, as);
    writeFileSync(path.join(dir, "pyisolate.yaml"), yaml);
    return dir;
  }

  it("a lower limit in the file applies over the code's", async () => {
    const ext = await manager.load({
      name: "res_limits_yaml_low",
      modulePath: withYaml("low", "limits:\n  pids: 4\n"),
      sandbox: { mode: "disabled" },
      limits: { pids: 50 },
    });
    try {
      const error = await rejectsWithLimit(ext.call("spawn", [20, 20]), "pids");
      assert.equal(error.max, 4);
    } finally {
      await ext.stop();
    }
  });

  it("a higher limit in the file does not loosen the code's", async () => {
    const ext = await manager.load({
      name: "res_limits_yaml_high",
      modulePath: withYaml("high", "limits:\n  pids: 1000\n"),
      sandbox: { mode: "disabled" },
      limits: { pids: 4 },
    });
    try {
      const error = await rejectsWithLimit(ext.call("spawn", [20, 20]), "pids");
      assert.equal(error.max, 4);
    } finally {
      await ext.stop();
    }
  });
});
