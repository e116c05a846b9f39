// SealedNodeExtension with a real process: a ComfyUI-style (V1) node pack listed, described and executed by name.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { RemoteError, type Extension } from "../src/index.js";
import { fixture, makeManager } from "./helpers.js";

type Handle = { __pyisolate_handle__: string; type: string };

function isHandle(value: unknown): value is Handle {
  return typeof value === "object" && value !== null && typeof (value as Handle).__pyisolate_handle__ === "string";
}

describe("a V1 node pack served by SealedNodeExtension", () => {
  const manager = makeManager();
  let ext: Extension;

  before(async () => {
    ext = await manager.load({
      name: "comfy_nodes",
      modulePath: fixture("comfy_nodes"),
      sandbox: { mode: "disabled" },
    });
  });
  after(() => manager.close());

  it("is found as the package's extension class and lists the nodes by display name", async () => {
    assert.equal(ext.extensionClass, "comfy_nodes:ComfyNodes");
    for (const method of [
      "list_nodes",
      "get_node_details",
      "get_node_info",
      "get_input_types",
      "execute_node",
      "flush_transport_state",
      "get_remote_object",
    ])
      assert.ok(ext.methods.includes(method), method);
    assert.deepEqual(await ext.call("list_nodes"), {
      AddNumbers: "Add two numbers",
      MakeCounter: "MakeCounter",
      BumpCounter: "BumpCounter",
      JoinText: "Join text",
      SlowNode: "SlowNode",
      ReleaseSlow: "ReleaseSlow",
    });
  });

  it("describes a node with plain values", async () => {
    const details = await ext.call("get_node_details", ["AddNumbers"]);
    assert.deepEqual(details, {
      input_types: {
        required: { a: ["FLOAT", { default: 0 }], b: ["FLOAT", { default: 0, step: 0.5 }] },
        optional: { kind: [["sum", "mean"]], scale: ["float"] },
      },
      return_types: ["FLOAT"],
      return_names: ["sum"],
      function: "add",
      category: "math",
      output_node: false,
      output_is_list: null,
      is_v3: false,
    });
    assert.deepEqual(await ext.call("get_node_info", ["JoinText"]), {
      input_types: { required: { parts: ["STRING"], sep: ["STRING"] } },
      return_types: ["STRING"],
      return_names: null,
      function: "join",
      category: "text",
      output_node: false,
      output_is_list: [false],
      is_v3: false,
    });
    assert.deepEqual(await ext.call("get_input_types", ["MakeCounter"]), { required: { start: ["INT"] } });
  });

  it("executes a node with keyword inputs; results are tuples (lists here)", async () => {
    assert.deepEqual(await ext.call("execute_node", ["AddNumbers"], { kwargs: { a: 1.5, b: 2 } }), [3.5]);
    assert.deepEqual(await ext.call("execute_node", ["AddNumbers"], { kwargs: { a: 1, b: 2, kind: "mean" } }), [1.5]);
    assert.deepEqual(
      await ext.call("execute_node", ["JoinText"], { kwargs: { parts: ["a", "b", "c"], sep: "-" } }),
      ["a-b-c"],
      "INPUT_IS_LIST wraps the single sep in a list; a bare result becomes a 1-tuple",
    );
  });

  it("keeps an object that cannot travel and takes its handle back as another node's input", async () => {
    const [counter, extra] = (await ext.call("execute_node", ["MakeCounter"], { kwargs: { start: 10 } })) as [
      Handle,
      { nested: Handle[]; label: string },
    ];
    assert.ok(isHandle(counter));
    assert.equal(counter.type, "Counter");
    assert.equal(extra.label, "counter");
    assert.ok(isHandle(extra.nested[0]));
    const [same, value] = (await ext.call("execute_node", ["BumpCounter"], { kwargs: { counter } })) as [
      Handle,
      number,
    ];
    assert.equal(value, 11);
    assert.ok(isHandle(same));
    const [, again] = (await ext.call("execute_node", ["BumpCounter"], {
      kwargs: { counter: extra.nested[0], by: 5 },
    })) as [Handle, number];
    assert.equal(again, 16, "the nested handle names the same object");
    assert.ok(((await ext.call("flush_transport_state")) as number) >= 0);
    await assert.rejects(
      ext.call("execute_node", ["BumpCounter"], { kwargs: { counter } }),
      (e: unknown) =>
        e instanceof RemoteError && e.remoteType === "KeyError" && /flush_transport_state/.test(e.message),
    );
  });

  it("serves other calls while a sync node runs in its worker thread", async () => {
    const slow = ext.call("execute_node", ["SlowNode"]);
    assert.deepEqual(await ext.call("execute_node", ["AddNumbers"], { kwargs: { a: 1, b: 1 } }), [2]);
    assert.deepEqual(await ext.call("execute_node", ["ReleaseSlow"]), []);
    assert.deepEqual(await slow, ["thread worker"]);
  });

  it("refuses unknown nodes and handles with a KeyError", async () => {
    for (const [method, args] of [
      ["get_node_details", ["Nope"]],
      ["get_input_types", ["Nope"]],
      ["execute_node", ["Nope"]],
      ["get_remote_object", ["no-such-id"]],
    ] as const) {
      await assert.rejects(
        ext.call(method, [...args]),
        (e: unknown) => e instanceof RemoteError && e.remoteType === "KeyError",
        method,
      );
    }
    await assert.rejects(
      ext.call("execute_node", ["BumpCounter"], {
        kwargs: { counter: { __pyisolate_handle__: "x-1", type: "Counter" } },
      }),
      (e: unknown) => e instanceof RemoteError && e.remoteType === "KeyError",
    );
  });
});

describe("SealedNodeExtension named by extensionClass", () => {
  const manager = makeManager();
  after(() => manager.close());

  it("serves the package's nodes without a subclass", async () => {
    const ext = await manager.load({
      name: "comfy_nodes_direct",
      modulePath: fixture("comfy_nodes"),
      sandbox: { mode: "disabled" },
      extensionClass: "pyisolate:SealedNodeExtension",
    });
    assert.equal(ext.extensionClass, "pyisolate._guest.sealed:SealedNodeExtension");
    assert.deepEqual(await ext.call("execute_node", ["AddNumbers"], { kwargs: { a: 2, b: 3 } }), [5]);
  });
});
