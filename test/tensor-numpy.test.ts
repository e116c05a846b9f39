// numpy across the boundary with real processes: zero-copy both ways, views, dtypes, nesting, shared_empty, forwarding.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Extension } from "../src/index.js";
import { liveSegments } from "../src/tensor/ledger.js";
import { nativeStatus } from "../src/tensor/native.js";
import { Tensor } from "../src/tensor/tensor.js";
import { fixture, makeManager, waitFor } from "./helpers.js";
import { NUMPY } from "./tensor-helpers.js";

const skip = nativeStatus.available ? false : `native addon unavailable: ${nativeStatus.reason}`;

describe("numpy arrays through a real extension", { skip }, () => {
  const manager = makeManager();
  let ext: Extension;

  before(async () => {
    ext = await manager.load({
      name: "tensor_np",
      modulePath: fixture("tensor_ext"),
      dependencies: NUMPY,
      sandbox: { mode: "disabled" },
    });
  });
  after(() => manager.close());

  it("a host Tensor arrives as a writable numpy array over the same memory", async () => {
    const t = Tensor.from(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
    assert.deepEqual(await ext.call("info", [t]), {
      type: "numpy",
      dtype: "float32",
      shape: [2, 3],
      strides: [3, 1],
      writeable: true,
      shared: true,
    });
    assert.equal(await ext.call("set_first", [t, 42]), 42);
    assert.equal(t.at(0, 0), 42, "the extension's write is in the host's tensor");
  });

  it("an array the extension returns as it got it comes back as the same segment (numpy in, numpy out)", async () => {
    const t = Tensor.from(new Int32Array([7, 8, 9]));
    const back = (await ext.call("echo", [t])) as Tensor;
    assert.ok(back instanceof Tensor);
    assert.equal(back.framework, "numpy");
    assert.equal(back.segment, t.segment, "no new mapping: the host recognised its own segment");
    assert.deepEqual([...back.toArray()], [7, 8, 9]);
  });

  it("non-contiguous views keep their strides and offset both ways", async () => {
    const t = Tensor.from(new Int16Array(Array.from({ length: 24 }, (_, i) => i)), [4, 6]);
    const view = t.transpose(0, 1).narrow(1, 1, 2);
    assert.deepEqual(await ext.call("info", [view]), {
      type: "numpy",
      dtype: "int16",
      shape: [6, 2],
      strides: [1, 6],
      writeable: true,
      shared: true,
    });
    assert.deepEqual(await ext.call("values", [view]), [...view.toArray()]);
    const back = (await ext.call("echo", [view])) as Tensor;
    assert.deepEqual([back.shape, back.strides, back.byteOffset], [[6, 2], [1, 6], view.byteOffset]);
    const made = (await ext.call("views")) as Record<string, Tensor | number>;
    const tr = made.t as Tensor;
    assert.deepEqual(
      [tr.shape, tr.strides],
      [
        [6, 4],
        [1, 6],
      ],
    );
    assert.equal(tr.at(2, 1), 8);
    const step = made.step as Tensor;
    assert.deepEqual([step.shape, step.strides, step.byteOffset], [[2, 3], [12, 2], 4]);
    assert.deepEqual([...step.toArray()], [1, 3, 5, 13, 15, 17]);
    assert.equal(step.segment, tr.segment, "two views of one array share one segment");
    assert.deepEqual([(made.empty as Tensor).shape, (made.empty as Tensor).numel], [[0, 6], 0]);
    assert.equal(made.scalar, 2.5, "a numpy scalar travels as a number");
    assert.deepEqual([(made.zero_d as Tensor).shape, (made.zero_d as Tensor).at()], [[], 7n]);
  });

  it("zero-size tensors go both ways", async () => {
    const empty = Tensor.zeros([0, 3], "float64");
    assert.deepEqual(await ext.call("info", [empty]), {
      type: "numpy",
      dtype: "float64",
      shape: [0, 3],
      strides: [0, 0],
      writeable: true,
      shared: false,
    });
    const back = (await ext.call("echo", [empty])) as Tensor;
    assert.deepEqual([back.shape, back.numel, back.dtype], [[0, 3], 0, "float64"]);
  });

  it("every numpy dtype round-trips with its values", async () => {
    const made = (await ext.call("make_all_dtypes")) as Record<string, Tensor>;
    assert.equal(Object.keys(made).length, 14);
    for (const [name, tensor] of Object.entries(made)) {
      assert.equal(tensor.dtype, name);
      assert.deepEqual(
        await ext.call("values", [tensor]),
        await ext.call("values", [await ext.call("echo", [tensor])]),
        name,
      );
      assert.equal(((await ext.call("info", [tensor])) as { dtype: string }).dtype, name);
    }
    assert.deepEqual(made.complex64!.at(2), [2, 0]);
    assert.equal(made.bool!.at(0), false);
    assert.equal(made.uint64!.at(2), 2n);
  });

  it("bfloat16 reaches numpy (which has no such dtype) as its raw uint16 bits", async () => {
    const t = Tensor.from(new Uint16Array([0x3f80, 0x4000]), [2], { dtype: "bfloat16" });
    const info = (await ext.call("info", [t])) as { dtype: string };
    assert.equal(info.dtype, "uint16");
    assert.deepEqual(await ext.call("values", [t]), [0x3f80, 0x4000]);
  });

  it("a tensor inside a dict inside a list arrives as an array", async () => {
    const t = Tensor.from(new Float64Array([1, 2]));
    const info = (await ext.call("walk", [[1, { inner: { t }, again: t }]])) as Record<
      string,
      { type: string; shared?: boolean }
    >;
    assert.deepEqual(info["$[0]"], { type: "int" });
    assert.equal(info["$[1].inner.t"]!.type, "numpy");
    assert.equal(info["$[1].again"]!.shared, true);
    const back = (await ext.call("echo", [[{ deep: [t] }]])) as [{ deep: [Tensor] }];
    assert.equal(back[0].deep[0].segment, t.segment);
  });

  it("shared_empty output goes back without a copy; an ordinary array is copied once", async () => {
    const shared = (await ext.call("make", [4, "numpy", true, true])) as Tensor;
    assert.deepEqual([...shared.toArray()], [0, 1, 2, 3]);
    (shared.data as Float32Array)[0] = 99;
    assert.equal(await ext.call("held_first"), 99, "the host's write is in the extension's array: one memory");
    const copied = (await ext.call("make", [4, "numpy", false, true])) as Tensor;
    assert.ok(copied.isShared, "the copy went into a shared segment");
    (copied.data as Float32Array)[0] = 99;
    assert.equal(await ext.call("held_first"), 0, "an ordinary array was copied into a new segment");
  });

  it("the ledger knows who holds a segment; the extension keeps it until the host lets go, then releases it", async () => {
    const t = Tensor.from(new Uint8Array(4096));
    await ext.call("hold", [t]);
    const id = t.segment.id!;
    const holders = () => liveSegments().find((s) => s.id === id)?.holders ?? [];
    assert.ok(
      holders().some((h) => h.startsWith("tensor_np (pid")),
      `holders: ${holders().join(", ")}`,
    );
    assert.ok(holders().includes("host"));
    await ext.call("drop");
    await ext.call("drop"); // a second round trip: any release of the first would have arrived by now
    assert.ok(
      holders().some((h) => h.startsWith("tensor_np")),
      "kept for the host while the host holds it",
    );
    t.release();
    await waitFor(() => holders().length === 0, 5000, "the extension's release");
  });
});

describe("extension -> host -> extension", { skip }, () => {
  const manager = makeManager();
  let a: Extension;
  let b: Extension;

  before(async () => {
    const [first, second] = await Promise.all(
      ["tensor_np", "tensor_np_b"].map((name) =>
        manager.load({ name, modulePath: fixture("tensor_ext"), dependencies: NUMPY, sandbox: { mode: "disabled" } }),
      ),
    );
    [a, b] = [first!, second!];
  });
  after(() => manager.close());

  it("an array returned by A and passed to B is the same memory in B", async () => {
    const fromA = (await a.call("make", [8, "numpy", true, true])) as Tensor;
    assert.equal(await b.call("set_first", [fromA, 1234]), 1234);
    assert.equal(await a.call("held_first"), 1234, "B wrote into A's array");
    assert.deepEqual(await b.call("info", [fromA.narrow(0, 2, 3)]), {
      type: "numpy",
      dtype: "float32",
      shape: [3],
      strides: [1],
      writeable: true,
      shared: true,
    });
  });
});
