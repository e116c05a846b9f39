// A host service streaming tensors to Python under bwrap, under Landlock and with the sandbox disabled: each item is
// the host's shared memory in Python (a numpy array over the same segment: Python's write shows in the host's Tensor).

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { callingExtension, Tensor, type Extension } from "../src/index.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import type { SandboxCapabilities } from "../src/sandbox/types.js";
import { nativeStatus } from "../src/tensor/native.js";
import { fixture, makeManager } from "./helpers.js";
import { SANDBOX_MODES, unavailableMode } from "./sandbox-modes.js";
import { NUMPY } from "./tensor-helpers.js";

const noAddon = nativeStatus.available ? undefined : `native addon unavailable: ${nativeStatus.reason}`;
let caps: SandboxCapabilities;
const manager = makeManager();
/** Every tensor the service streamed, by extension name. */
const sent = new Map<string, Tensor[]>();

before(async () => {
  caps = await detectSandbox();
  manager.provide("Chat", {
    async *tensors(this: void, n: number, size: number): AsyncGenerator<Tensor> {
      for (let i = 0; i < n; i++) {
        const tensor = Tensor.zeros([size], "float32");
        (tensor.data as Float32Array)[0] = i;
        const caller = callingExtension()!;
        sent.set(caller, [...(sent.get(caller) ?? []), tensor]);
        yield tensor;
      }
    },
  });
});
after(() => manager.close());

for (const mode of SANDBOX_MODES) {
  describe(`a service streams tensors under ${mode.label}`, () => {
    let ext: Extension | undefined;
    let skip: string | undefined;
    const name = `svcstream_np_${mode.tag}`;
    before(async () => {
      skip = unavailableMode(caps, mode.sandbox) ?? noAddon;
      if (!skip)
        ext = await manager.load({
          name,
          modulePath: fixture("svcstream_ext"),
          dependencies: NUMPY,
          sandbox: mode.sandbox,
        });
    });
    after(() => ext?.stop());

    it("each streamed tensor is the host's memory in Python: its write shows in the host's Tensor, no copy", async (t) => {
      if (skip) return t.skip(skip);
      const seen = await ext!.call("tensors", [3, 4096]);
      assert.deepEqual(seen, [
        ["ndarray", [4096], 0],
        ["ndarray", [4096], 1],
        ["ndarray", [4096], 2],
      ]);
      const tensors = sent.get(name)!;
      assert.equal(tensors.length, 3);
      for (const [i, tensor] of tensors.entries()) {
        assert.equal(tensor.isShared, true);
        assert.equal((tensor.data as Float32Array)[1], 100 + i, "Python's write landed in the host's segment");
      }
      (tensors[2]!.data as Float32Array)[0] = 42.5;
      assert.equal(await ext!.call("kept_first", [2]), 42.5, "and the host's write in Python's array");
    });
  });
}
