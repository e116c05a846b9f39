// Segment memory is gone when its holders are: an extension killed with SIGKILL, the host itself killed.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { after, describe, it } from "node:test";
import type { Extension } from "../src/index.js";
import { liveSegments } from "../src/tensor/ledger.js";
import { nativeStatus } from "../src/tensor/native.js";
import { Tensor } from "../src/tensor/tensor.js";
import { fixture, isAlive, makeManager, waitFor } from "./helpers.js";
import { NUMPY, whileMeasuringShmem } from "./tensor-helpers.js";

const skip = nativeStatus.available ? false : `native addon unavailable: ${nativeStatus.reason}`;
const COUNT = 100;
const BYTES = 4 * 1024 * 1024; // 100 x 4 MiB: 400 MiB, far above the noise of other tests
const SLACK = 120 * 1024 * 1024;

/** Shmem of the whole machine, in bytes (memfd pages count here). */
function shmem(): number {
  const match = /^Shmem:\s+(\d+) kB/m.exec(readFileSync("/proc/meminfo", "utf8"));
  return Number(match![1]) * 1024;
}

const MiB = (n: number) => `${(n / 1048576).toFixed(0)} MiB`;

describe("segment lifetime", { skip }, () => {
  const manager = makeManager();
  after(() => manager.close());

  it(`SIGKILL of an extension holding ${COUNT} host tensors leaves no segment memory behind`, async () => {
    const ext = await manager.load({
      name: "tensor_np",
      modulePath: fixture("tensor_ext"),
      dependencies: NUMPY,
      sandbox: { mode: "disabled" },
    });
    await whileMeasuringShmem(() => killHolder(ext));
  });

  async function killHolder(ext: Extension): Promise<void> {
    const before = shmem();
    for (let i = 0; i < COUNT; i++) {
      const t = Tensor.zeros([BYTES], "uint8");
      (t.data as Uint8Array).fill(1); // touch the pages: the memory is really in use
      await ext.call("hold", [t]);
      t.release(); // the host lets go: the extension is the only holder now
    }
    const held = shmem() - before;
    assert.ok(held > COUNT * BYTES - SLACK, `the held tensors show in Shmem (${MiB(held)})`);
    const holder = liveSegments().filter((s) => s.holders.some((h) => h.startsWith("tensor_np (pid")));
    assert.equal(holder.length, COUNT, "the ledger lists every segment the extension holds");
    const pid = ext.pid!;
    process.kill(pid, "SIGKILL");
    await waitFor(() => !isAlive(pid), 10_000, "the extension to die");
    await waitFor(() => shmem() - before < SLACK, 10_000, `Shmem to fall back (now +${MiB(shmem() - before)})`);
    // The ledger forgets the holder once the exit is reported (after its pipes drained).
    await waitFor(
      () => !liveSegments().some((s) => s.holders.some((h) => h.startsWith("tensor_np (pid"))),
      10_000,
      "the ledger to forget the extension",
    );
  }

  it("SIGKILL of the host itself: its extensions die and no segment memory remains, before and after a restart", async () => {
    const script = `
      import { ExtensionManager, createConsoleLogger } from ${JSON.stringify(new URL("../src/index.js", import.meta.url).href)};
      import { Tensor } from ${JSON.stringify(new URL("../src/tensor/tensor.js", import.meta.url).href)};
      const m = new ExtensionManager({ venvRoot: ${JSON.stringify(manager.venvRoot)}, forwardOutput: false, logger: createConsoleLogger("silent") });
      const ext = await m.load({ name: "tensor_np", modulePath: ${JSON.stringify(fixture("tensor_ext"))}, dependencies: ${JSON.stringify(NUMPY)}, sandbox: { mode: "disabled" } });
      const kept = [];
      for (let i = 0; i < ${COUNT}; i++) {
        const t = Tensor.zeros([${BYTES}], "uint8");
        t.data.fill(1);
        await ext.call("hold", [t]);
        kept.push(t);
      }
      await ext.call("make_many", [10, ${BYTES}]);
      console.log(JSON.stringify({ pid: ext.pid }));
      setInterval(() => {}, 1000);
    `;
    await whileMeasuringShmem(() => killHosts(script));
  });

  async function killHosts(script: string): Promise<void> {
    const before = shmem();
    for (let round = 0; round < 2; round++) {
      const host = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      const line = await createInterface({ input: host.stdout! })[Symbol.asyncIterator]().next();
      const { pid } = JSON.parse(line.value as string) as { pid: number };
      assert.ok(shmem() - before > (COUNT + 10) * BYTES - SLACK, `round ${round}: the tensors show in Shmem`);
      host.kill("SIGKILL");
      await waitFor(() => !isAlive(pid), 10_000, "the extension to die with its host");
      await waitFor(
        () => shmem() - before < SLACK,
        10_000,
        `round ${round}: Shmem to fall back (now +${MiB(shmem() - before)})`,
      );
    }
  }
});
