// torch across the boundary with real processes: torch in, torch out, requires_grad, every dtype (CUDA: tensor-cuda).

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Extension } from "../src/index.js";
import { nativeStatus } from "../src/tensor/native.js";
import { Tensor } from "../src/tensor/tensor.js";
import { fixture, makeManager } from "./helpers.js";
import { TORCH } from "./tensor-helpers.js";

const skip = nativeStatus.available ? false : `native addon unavailable: ${nativeStatus.reason}`;
const DTYPES = [
  "bool",
  "int8",
  "int16",
  "int32",
  "int64",
  "uint8",
  "uint16",
  "uint32",
  "uint64",
  "float16",
  "bfloat16",
  "float32",
  "float64",
  "complex64",
  "complex128",
];

describe("torch tensors through a real extension", { skip, timeout: 900_000 }, () => {
  const manager = makeManager();
  let ext: Extension;

  before(async () => {
    ext = await manager.load({
      name: "tensor_torch",
      modulePath: fixture("tensor_ext"),
      ...TORCH,
      sandbox: { mode: "disabled" },
    });
  });
  after(() => manager.close());

  it("a host Tensor marked torch arrives as a torch tensor over the same memory", async () => {
    const t = Tensor.from(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
    t.framework = "torch";
    assert.deepEqual(await ext.call("info", [t.transpose(0, 1)]), {
      type: "torch",
      dtype: "float32",
      shape: [3, 2],
      strides: [1, 3],
      requires_grad: false,
      device: "cpu",
      shared: true,
    });
    assert.equal(await ext.call("set_first", [t, 42]), 42);
    assert.equal(t.at(0, 0), 42);
  });

  it("torch in, torch out, with requires_grad carried both ways", async () => {
    const t = (await ext.call("torch_grad", [3])) as Tensor;
    assert.equal(t.framework, "torch");
    assert.equal(t.requiresGrad, true);
    assert.deepEqual([...t.toArray()], [1, 1, 1]);
    assert.deepEqual(await ext.call("grad", [t]), { requires_grad: true, is_leaf: true });
    const back = (await ext.call("echo", [t])) as Tensor;
    assert.equal(back.segment, t.segment);
    assert.equal(back.requiresGrad, true);
  });

  it("torch descriptors are written in wire order, in a segment or as bytes", async () => {
    const order = ["dtype", "shape", "strides", "offset", "storage", "framework", "requiresGrad"];
    assert.deepEqual(await ext.call("descriptor_keys", ["torch", true]), order);
    assert.deepEqual(await ext.call("descriptor_keys", ["torch", false]), order);
  });

  it("every torch dtype round-trips, bfloat16, float16, bool and complex included", async () => {
    const made = (await ext.call("make_all_dtypes", ["torch"])) as Record<string, Tensor>;
    assert.deepEqual(Object.keys(made).sort(), [...DTYPES].sort());
    for (const [name, tensor] of Object.entries(made)) {
      assert.equal(tensor.dtype, name);
      assert.equal(tensor.framework, "torch");
      assert.equal(((await ext.call("info", [tensor])) as { dtype: string }).dtype, name);
      assert.deepEqual(
        await ext.call("values", [await ext.call("echo", [tensor])]),
        await ext.call("values", [tensor]),
        name,
      );
    }
    assert.equal(made.bfloat16!.at(2), 2);
    assert.equal(made.float16!.at(1), 1);
    assert.equal(made.bool!.at(1), true);
    assert.deepEqual(made.complex128!.at(2), [2, 0]);
  });

  it("shared_empty(like='torch') goes back without a copy; zero-size tensors work", async () => {
    const shared = (await ext.call("make", [4, "torch", true, true])) as Tensor;
    (shared.data as Float32Array)[0] = 7;
    assert.equal(await ext.call("held_first"), 7);
    const empty = Tensor.zeros([2, 0], "int64");
    empty.framework = "torch";
    const back = (await ext.call("echo", [empty])) as Tensor;
    assert.deepEqual([back.shape, back.framework, back.dtype], [[2, 0], "torch", "int64"]);
  });
});
