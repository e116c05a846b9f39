// Fuzzing the host's handling of the guest's hello, ready and fatal messages: any sequence ends in a ready extension
// or a typed error (ProtocolError, ExtensionLoadError), never a throw, a crash or a hang; then hostile handshakes from
// real guest processes, each refused with ExtensionLoadError while the host goes on loading others.

import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import fc from "fast-check";
import { ExtensionLoadError, ProtocolError, RemoteError } from "../src/errors.js";
import { Handshake, type HandshakeStep } from "../src/lifecycle/handshake.js";
import { fixture, makeManager } from "./helpers.js";
import { fuzzSettings } from "./resilience-fuzz-arbitraries.js";

const anyJson = fc.jsonValue({ maxDepth: 3 });
const name = fc.oneof(
  fc.string({ minLength: 1, maxLength: 12 }),
  fc.string({ minLength: 250, maxLength: 300 }),
  fc.constant(""),
);
const field = <T>(good: fc.Arbitrary<T>) => fc.oneof({ weight: 3, arbitrary: good }, { weight: 1, arbitrary: anyJson });
/** Headers that look like handshake messages, each field well-formed or anything. */
const controlMessage: fc.Arbitrary<Record<string, unknown>> = fc.record(
  {
    k: fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom("hello", "ready", "fatal") },
      { weight: 1, arbitrary: anyJson },
    ),
    v: field(fc.constantFrom(1, 2, 0, 1.5)),
    python: field(name),
    pid: field(fc.oneof(fc.integer(), fc.double())),
    methods: field(fc.array(name, { maxLength: 5 })),
    extensionClass: field(name),
    error: field(
      fc.record({ type: name, message: fc.string(), traceback: field(fc.string()) }, { requiredKeys: ["type"] }),
    ),
  },
  { requiredKeys: ["k"] },
);

/** Mostly well-formed messages among the hostile ones, so that sequences also reach a ready extension. */
const goodHello = fc.record({
  k: fc.constant("hello"),
  v: fc.constant(1),
  python: fc.constant("3.11.7"),
  pid: fc.nat(),
});
const goodReady = fc.record({
  k: fc.constant("ready"),
  methods: fc.array(fc.string({ minLength: 1, maxLength: 8 }), { maxLength: 4 }),
  extensionClass: fc.constant("Ext"),
});
const handshakeMessage = fc.oneof(controlMessage, goodHello, goodReady);

function isTyped(step: HandshakeStep): boolean {
  return step.kind !== "fail" || step.error instanceof ProtocolError || step.error instanceof ExtensionLoadError;
}

describe("fuzz: the host's handshake", () => {
  it("answers any sequence of hello, ready and fatal with steps, in order, or one typed failure, never a throw", () => {
    const seen = { ready: 0, fatal: 0, refused: 0 };
    fc.assert(
      fc.property(fc.array(handshakeMessage, { maxLength: 6 }), (messages) => {
        const handshake = new Handshake("fuzzed");
        let inited = false;
        let ended = false;
        for (const message of messages) {
          const step = handshake.accept(message);
          assert.ok(isTyped(step), `untyped failure: ${JSON.stringify(step)}`);
          if (ended) assert.equal(step.kind, "fail", "nothing is accepted after the handshake ended");
          if (step.kind === "init") {
            assert.equal(inited, false, "one init only");
            inited = true;
            assert.equal(typeof step.python, "string");
          }
          if (step.kind === "ready") {
            assert.ok(inited && !ended, "ready only after hello");
            assert.ok(step.methods.every((m) => typeof m === "string" && m.length > 0 && m.length <= 256));
            assert.equal(typeof step.extensionClass, "string");
            seen.ready++;
          }
          if (step.kind === "fail") {
            if (!ended) seen[step.error instanceof ExtensionLoadError ? "fatal" : "refused"]++;
            if (step.error instanceof ExtensionLoadError) assert.ok(step.error.cause instanceof RemoteError);
          }
          if (step.kind !== "init") ended = true;
        }
        assert.equal(handshake.done, ended);
      }),
      fuzzSettings(1000),
    );
    // The control: the generator reaches every outcome, so the property is not vacuous.
    assert.ok(seen.ready > 0 && seen.fatal > 0 && seen.refused > 0, JSON.stringify(seen));
  });

  it("makes a well-formed hello then ready an extension ready with exactly its methods", () => {
    fc.assert(
      fc.property(fc.array(fc.string({ minLength: 1, maxLength: 20 }), { maxLength: 8 }), (methods) => {
        const handshake = new Handshake("fine");
        assert.equal(handshake.accept({ k: "hello", v: 1, python: "3.11.7", pid: 42 }).kind, "init");
        assert.deepEqual(handshake.accept({ k: "ready", methods, extensionClass: "Ext" }), {
          kind: "ready",
          methods,
          extensionClass: "Ext",
          streams: [],
        });
      }),
      fuzzSettings(100),
    );
  });
});

describe("hostile handshakes from real guest processes", () => {
  const manager = makeManager();
  after(() => manager.close());
  const hello = { k: "hello", v: 1, runtime: "x", python: "3.11", pid: 1 };
  const cases: [string, object[], RegExp][] = [
    ["a fatal whose error is null", [{ k: "fatal", error: null }], /fatal: "error" must be an object/],
    [
      "a fatal whose error type is a number",
      [{ k: "fatal", error: { type: 5, message: "m" } }],
      /fatal: "error" must be an object/,
    ],
    ["a second hello", [hello], /a second hello/],
    [
      "a ready whose methods are a number",
      [{ k: "ready", methods: 5, extensionClass: "E" }],
      /"methods" must be a list/,
    ],
    [
      "a ready whose class is an object",
      [{ k: "ready", methods: ["a"], extensionClass: { toString: 1 } }],
      /"extensionClass" must be a class name/,
    ],
  ];
  for (const [what, frames, reason] of cases) {
    it(`refuses ${what} with ExtensionLoadError, and the host goes on`, async () => {
      const error = await manager
        .load({
          name: "res_res_handshake_bad",
          modulePath: fixture("res_res_handshake"),
          sandbox: { mode: "disabled" },
          env: { RES_HS: JSON.stringify(frames) },
        })
        .catch((e: unknown) => e);
      assert.ok(error instanceof ExtensionLoadError, String(error));
      assert.match(error.message, reason);
      const fine = await manager.load({
        name: "res_res_handshake_ok",
        modulePath: fixture("res_res_handshake"),
        sandbox: { mode: "disabled" },
      });
      assert.equal(await fine.call("echo", ["still here"]), "still here");
      await fine.stop();
    });
  }
});
