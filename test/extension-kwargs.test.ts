// Keyword arguments with real extension processes: host to Python methods, Python to host services, callbacks both ways.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { kwargs, RemoteError, Tensor, type Extension, type ExtensionManager } from "../src/index.js";
import { fixture, makeManager } from "./helpers.js";
import { NUMPY } from "./tensor-helpers.js";

/** A host service that records the arguments of each call, as a list (so an extra trailing object shows). */
function provideEvents(manager: ExtensionManager): unknown[][] {
  const received: unknown[][] = [];
  manager.provide("Events", {
    send(...args: unknown[]) {
      received.push(args);
      return args.length;
    },
  });
  return received;
}

/** What every interpreter must do; the tensor cases need numpy and run on the default one only. */
function plainChecks(extension: () => Extension, received: () => unknown[][]): void {
  it("host -> Python: options.kwargs and the kwargs() marker both arrive as **kw", async () => {
    const ext = extension();
    assert.equal(await ext.call("scale", [2], { kwargs: { factor: 3, offset: 1 } }), 7);
    assert.equal(await ext.proxy.scale!(2, kwargs({ offset: 5 })), 7);
    assert.equal(await ext.call("scale", [2, kwargs({ factor: 4 })]), 8);
    assert.equal(await ext.proxy.scale!(2, kwargs({})), 2, "an empty set is no keywords");
  });

  it("nested values, bytes, big ints and callables travel inside keyword arguments", async () => {
    const ext = extension();
    const seen = await ext.proxy.describe!(
      Uint8Array.of(1),
      kwargs({
        blob: Uint8Array.of(0xab, 0xcd),
        big: 2n ** 70n,
        nested: { list: [1, { deep: [null, "é"] }] },
        fn: () => 1,
      }),
    );
    assert.deepEqual(seen, {
      args: [{ bytes: "01" }],
      kwargs: { blob: { bytes: "abcd" }, big: 2n ** 70n, nested: { list: [1, { deep: [null, "é"] }] }, fn: "callable" },
    });
  });

  it("a keyword the method does not take is Python's TypeError, as a RemoteError", async () => {
    const ext = extension();
    const error = await ext.call("scale", [1], { kwargs: { nope: 1 } }).catch((e: unknown) => e);
    assert.ok(error instanceof RemoteError);
    assert.equal(error.remoteType, "TypeError");
    assert.match(error.message, /unexpected keyword argument 'nope'/);
    await assert.rejects(ext.call("scale", [1], { kwargs: { "not-a-name": 1 } }), /not a Python identifier/);
    assert.equal(await ext.call("scale", [1]), 1, "the extension is unharmed");
  });

  it("Python -> host: keyword arguments reach a service method as one trailing object, and only when given", async () => {
    const ext = extension();
    const before = received().length;
    assert.equal(await ext.call("notify", ["joined", { room: 1 }], { kwargs: { sid: null } }), 3);
    assert.equal(await ext.call("notify", ["left", [1, 2]]), 2);
    assert.deepEqual(received().slice(before), [
      ["joined", { room: 1 }, { sid: null }],
      ["left", [1, 2]],
    ]);
    assert.match(String(await ext.call("bad_name")), /'not-a-name' is not a Python identifier/);
  });

  it("callbacks: a JS function called from Python with kwargs gets the trailing object; a Python callable takes a marker", async () => {
    const ext = extension();
    const got: unknown[][] = [];
    const fn = (...args: unknown[]): string => (got.push(args), "called");
    assert.equal(await ext.call("call_back", [fn, 1], { kwargs: { tag: "x", when: 2n ** 64n } }), "called");
    assert.equal(await ext.call("call_back", [fn, 2]), "called");
    assert.deepEqual(got, [[1, { tag: "x", when: 2n ** 64n }], [2]]);
    const scaler = (await ext.call("make_scaler")) as (...args: unknown[]) => Promise<unknown>;
    assert.equal(await scaler(3, kwargs({ factor: 4 })), 12);
    assert.equal(await scaler(3), 3);
  });
}

describe("keyword arguments through a real extension", () => {
  const manager = makeManager();
  const received = provideEvents(manager);
  let ext: Extension;

  before(async () => {
    ext = await manager.load({
      name: "kwargs_np",
      modulePath: fixture("kwargs_ext"),
      dependencies: NUMPY,
      sandbox: { mode: "disabled" },
    });
  });
  after(() => manager.close());

  plainChecks(
    () => ext,
    () => received,
  );

  it("tensors as keyword arguments: one in args and one in kw share the frame (both arrive as numpy arrays)", async () => {
    const x = Tensor.from(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
    const columns = (await ext.proxy.mean!(x, kwargs({ axis: 0 }))) as Tensor;
    assert.ok(columns instanceof Tensor);
    assert.deepEqual([columns.shape, [...columns.toArray()]], [[3], [2.5, 3.5, 4.5]]);
    const weights = Tensor.from(new Float32Array([1, 0, 0]));
    const rows = (await ext.call("mean", [x], { kwargs: { axis: 1, weights } })) as Tensor;
    assert.deepEqual([...rows.toArray()], [1, 4]);
    const seen = await ext.proxy.describe!(kwargs({ pair: { a: x, b: [weights] } }));
    assert.deepEqual(seen, {
      args: [],
      kwargs: {
        pair: {
          a: { ndarray: "float32", shape: [2, 3], values: [1, 2, 3, 4, 5, 6] },
          b: [{ ndarray: "float32", shape: [3], values: [1, 0, 0] }],
        },
      },
    });
  });
});

for (const version of ["3.9", "3.13"]) {
  describe(`keyword arguments on Python ${version}`, () => {
    const manager = makeManager();
    const received = provideEvents(manager);
    let ext: Extension;

    before(async () => {
      ext = await manager.load({
        name: `kwargs_py${version.replace(".", "")}`,
        modulePath: fixture("kwargs_ext"),
        python: version,
        sandbox: { mode: "disabled" },
      });
      assert.ok(ext.pythonVersion.startsWith(`${version}.`), ext.pythonVersion);
    });
    after(() => manager.close());

    plainChecks(
      () => ext,
      () => received,
    );
  });
}
