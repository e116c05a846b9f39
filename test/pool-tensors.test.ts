// Tensors through a pool with real processes under bwrap, Landlock and no sandbox: each worker has its own fd
// channel, and a host Tensor reaches whichever worker takes the call as shared memory (a write in Python shows here).

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Tensor, type ExtensionPool } from "../src/index.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import { nativeStatus } from "../src/tensor/native.js";
import type { SandboxCapabilities } from "../src/sandbox/types.js";
import { fixture, makeManager } from "./helpers.js";
import { SANDBOX_MODES, unavailableMode } from "./sandbox-modes.js";
import { NUMPY } from "./tensor-helpers.js";

const noAddon = nativeStatus.available ? undefined : `native addon unavailable: ${nativeStatus.reason}`;

let caps: SandboxCapabilities;
const manager = makeManager();
before(async () => {
  caps = await detectSandbox();
});
after(() => manager.close());

for (const mode of SANDBOX_MODES) {
  describe(`tensors to a pool of 3 under ${mode.label}`, () => {
    let pool: ExtensionPool | undefined;
    let skip: string | undefined;
    before(async () => {
      skip = noAddon ?? unavailableMode(caps, mode.sandbox);
      if (!skip)
        pool = await manager.pool({
          name: `pool_tensor_${mode.tag}`,
          modulePath: fixture("pool_ext"),
          dependencies: NUMPY,
          sandbox: mode.sandbox,
          workers: 3,
        });
    });
    after(() => pool?.stop());

    it("writes in place into one host Tensor from each worker in turn (zero-copy whichever worker takes it)", async (t) => {
      if (skip) return t.skip(skip);
      const tensor = Tensor.from(new Float32Array([1, 2, 3, 4]));
      const tokens = new Set<string>();
      for (const factor of [2, 3, 5]) tokens.add((await pool!.call("scale", [tensor, factor])) as string);
      assert.equal(tokens.size, 3, "three workers each got the tensor");
      assert.deepEqual(
        [...(tensor.toArray() as Float32Array)],
        [30, 60, 90, 120],
        "every worker wrote the host's memory",
      );
    });

    it("takes concurrent tensor calls on different workers, each on its own channel", async (t) => {
      if (skip) return t.skip(skip);
      const tensors = [0, 1, 2, 3, 4, 5].map((i) => Tensor.from(new Float64Array(1024).fill(i)));
      const tokens = await Promise.all(tensors.map((x, i) => pool!.call("scale", [x, i + 1]) as Promise<string>));
      assert.equal(new Set(tokens).size, 3, "the six calls were spread over the three workers");
      tensors.forEach((x, i) => {
        const values = x.toArray() as Float64Array;
        assert.ok(
          values.every((v) => v === i * (i + 1)),
          `tensor ${i} scaled in place`,
        );
      });
    });

    it("hands a tensor one worker returned to another worker, which writes the same memory", async (t) => {
      if (skip) return t.skip(skip);
      const made = (await pool!.call("arange", [4], { sticky: "maker" })) as Tensor;
      assert.ok(made instanceof Tensor);
      const maker = ((await pool!.call("whoami", [], { sticky: "maker" })) as { token: string }).token;
      // Sent in turn: at least two of the three calls land on workers other than the maker.
      const writers = new Set<string>();
      for (const factor of [2, 2, 2]) writers.add((await pool!.call("scale", [made, factor])) as string);
      writers.delete(maker);
      assert.ok(writers.size >= 2, "other workers got the maker's tensor");
      assert.deepEqual([...(made.toArray() as Float32Array)], [0, 8, 16, 24]);
      pool!.release("maker");
    });
  });
}
