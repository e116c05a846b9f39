// Copy transport: tensorTransport "copy", and the automatic fallback when the native addon is missing.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import type { Extension } from "../src/index.js";
import { Tensor } from "../src/tensor/tensor.js";
import { fixture, makeManager } from "./helpers.js";
import { NUMPY } from "./tensor-helpers.js";

describe('tensorTransport: "copy"', () => {
  const manager = makeManager();
  let ext: Extension;

  before(async () => {
    ext = await manager.load({
      name: "tensor_np",
      modulePath: fixture("tensor_ext"),
      dependencies: NUMPY,
      sandbox: { mode: "disabled" },
      tensorTransport: "copy",
    });
  });
  after(() => manager.close());

  it("arrays cross as copies both ways, with layout, dtype and framework kept", async () => {
    const t = Tensor.from(new Int16Array(Array.from({ length: 12 }, (_, i) => i)), [3, 4]);
    const view = t.transpose(0, 1);
    assert.deepEqual(await ext.call("info", [view]), {
      type: "numpy",
      dtype: "int16",
      shape: [4, 3],
      strides: [3, 1],
      writeable: true,
      shared: false,
    });
    assert.deepEqual(await ext.call("values", [view]), [...view.toArray()]);
    await ext.call("set_first", [t, 99]);
    assert.equal(t.at(0, 0), 0, "a copy: the extension's write stays there");
    const made = (await ext.call("make", [5, "numpy", true, false])) as Tensor;
    assert.equal(made.isShared, false);
    assert.equal(made.framework, "numpy");
    assert.deepEqual([...made.toArray()], [0, 1, 2, 3, 4]);
    const nested = (await ext.call("echo", [{ list: [t] }])) as { list: [Tensor] };
    assert.deepEqual([...nested.list[0].toArray()], [...t.toArray()]);
  });
});

describe("without the native addon (PYISOLATE_DISABLE_NATIVE=1)", () => {
  it("tensors still cross, as copies, in a host that cannot share memory", () => {
    const script = `
      import { ExtensionManager, createConsoleLogger } from ${JSON.stringify(new URL("../src/index.js", import.meta.url).href)};
      import { Tensor } from ${JSON.stringify(new URL("../src/tensor/tensor.js", import.meta.url).href)};
      const m = new ExtensionManager({ venvRoot: ${JSON.stringify(makeManager().venvRoot)}, forwardOutput: false, logger: createConsoleLogger("silent") });
      const ext = await m.load({ name: "tensor_np", modulePath: ${JSON.stringify(fixture("tensor_ext"))}, dependencies: ${JSON.stringify(NUMPY)}, sandbox: { mode: "disabled" } });
      const t = Tensor.from(new Float32Array([1, 2, 3]));
      const info = await ext.call("info", [t]);
      const back = await ext.call("double", [t]);
      console.log(JSON.stringify({ shared: t.isShared, info, back: [...back.toArray()], backShared: back.isShared }));
      await m.close();
    `;
    const run = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      env: { ...process.env, PYISOLATE_DISABLE_NATIVE: "1" },
      encoding: "utf8",
      timeout: 120_000,
    });
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout.trim().split("\n").at(-1)!), {
      shared: false,
      info: { type: "numpy", dtype: "float32", shape: [3], strides: [1], writeable: true, shared: false },
      back: [2, 4, 6],
      backShared: false,
    });
  });
});
