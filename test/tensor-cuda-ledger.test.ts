// The host's CUDA book, driven with descriptors as guests send them: who holds what, and when a producer may free.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { ProtocolError } from "../src/errors.js";
import { CudaLedger, type CudaPeer } from "../src/tensor/cuda-ledger.js";
import type { CudaTensor } from "../src/tensor/cuda.js";
import { gc } from "./rpc-helpers.js";

/** An extension connection that records the exports the host told it to drop. */
class FakePeer implements CudaPeer {
  readonly dropped: number[] = [];
  constructor(readonly holder: string) {}
  releaseExports(ids: number[]): void {
    this.dropped.push(...ids);
  }
}

/** What a producing guest sends: a 4x4 float32 view of a 64-byte storage, by its export number. */
function exported(id: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    dtype: "float32",
    shape: [4, 4],
    strides: [4, 1],
    offset: 0,
    framework: "torch",
    storage: {
      kind: "cuda",
      device: 0,
      size: 64,
      ipc: {
        handle: "ab".repeat(64),
        storageOffset: 0,
        event: "",
        eventSyncRequired: false,
        cuda: "13.0",
        origin: "p",
        export: id,
      },
    },
    ...overrides,
  };
}

/** What a consumer sends back: the descriptor it was given, with a view of its own. */
function sentBack(tensor: CudaTensor, view: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...structuredClone(tensor.descriptor), ...view };
}

function setup() {
  const ledger = new CudaLedger();
  return { ledger, producer: new FakePeer("a (pid 1)"), b: new FakePeer("b (pid 2)"), c: new FakePeer("c (pid 3)") };
}

describe("CUDA ledger", () => {
  it("a tensor the host drops without forwarding is freed at once: the producer is told", () => {
    const { ledger, producer } = setup();
    const t = ledger.received(exported(1), producer);
    assert.equal(t.producer, "a (pid 1)");
    assert.deepEqual(ledger.list(), [{ key: "a (pid 1)#1", producer: "a (pid 1)", host: 1, consumers: {} }]);
    t.release();
    t.release(); // idempotent
    assert.deepEqual(producer.dropped, [1]);
    assert.deepEqual(ledger.list(), []);
    assert.throws(() => ledger.sending(t, producer), /released/);
  });

  it("forwarded to two consumers, it lives until the host and both let go, and a key repeats once per opening", () => {
    const { ledger, producer, b, c } = setup();
    const t = ledger.received(exported(7), producer);
    const toB = ledger.sending(t, b);
    assert.equal(toB.storage.ipc.key, "a (pid 1)#7", "the consumer gets the host's key");
    ledger.sending(t, b); // b opens it twice
    ledger.sending(t, c);
    t.release();
    assert.deepEqual(ledger.list()[0]!.consumers, { "b (pid 2)": 2, "c (pid 3)": 1 });
    ledger.released("b (pid 2)", ["a (pid 1)#7"]);
    ledger.released("c (pid 3)", ["a (pid 1)#7", "a (pid 1)#7"]); // one too many: ignored, b still holds one
    ledger.released("nobody", ["a (pid 1)#7", "no such key"]);
    assert.deepEqual(producer.dropped, []);
    ledger.released("b (pid 2)", ["a (pid 1)#7"]);
    assert.deepEqual(producer.dropped, [7]);
  });

  it("sending it back to its producer is not a delivery (the producer rebuilds it over its own storage)", () => {
    const { ledger, producer } = setup();
    const t = ledger.received(exported(2), producer);
    ledger.sending(t, producer);
    t.release();
    assert.deepEqual(producer.dropped, [2]);
  });

  it("a consumer sending it on gives a new CudaTensor over the producer's handle, whatever handle it wrote", () => {
    const { ledger, producer, b, c } = setup();
    const t = ledger.received(exported(3), producer);
    ledger.sending(t, b);
    const forged = sentBack(t, { shape: [2, 4], offset: 32 }) as { storage: { ipc: Record<string, unknown> } };
    forged.storage.ipc.handle = "cd".repeat(64);
    const back = ledger.received(forged, b);
    assert.deepEqual(
      [back.shape, back.descriptor.offset, back.descriptor.storage.ipc.handle],
      [[2, 4], 32, "ab".repeat(64)],
    );
    t.release();
    ledger.released("b (pid 2)", ["a (pid 1)#3"]);
    assert.deepEqual(producer.dropped, [], "the host's second object still holds it");
    ledger.sending(back, c);
    back.release();
    ledger.released("c (pid 3)", ["a (pid 1)#3"]);
    assert.deepEqual(producer.dropped, [3]);
  });

  it("a key sent by an extension that does not hold it gives a tensor that cannot be sent anywhere", () => {
    const { ledger, producer, b, c } = setup();
    const t = ledger.received(exported(4), producer);
    const guessed = ledger.received(sentBack(t), c);
    assert.equal(guessed.released, true);
    assert.throws(() => ledger.sending(guessed, b), /does not hold/);
    assert.deepEqual(ledger.list()[0]!.host, 1, "the guess did not count as a holder");
  });

  it("a view that leaves the producer's storage is refused", () => {
    const { ledger, producer, b } = setup();
    const t = ledger.received(exported(5), producer);
    ledger.sending(t, b);
    assert.throws(() => ledger.received(sentBack(t, { shape: [8, 4] }), b), ProtocolError);
    assert.throws(() => ledger.received(exported(6, { shape: [5, 4] }), producer), ProtocolError);
    const noExport = exported(1) as { storage: { ipc: Record<string, unknown> } };
    delete noExport.storage.ipc.export;
    assert.throws(() => ledger.received(noExport, producer), /ipc\.export/);
  });

  it("when the producer stops its tensors are gone; when a consumer stops its holds go with it", () => {
    const { ledger, producer, b, c } = setup();
    const t = ledger.received(exported(8), producer);
    const u = ledger.received(exported(9), producer);
    ledger.sending(u, b);
    ledger.sending(u, c);
    u.release();
    ledger.ended(b);
    assert.deepEqual(producer.dropped, []);
    ledger.ended(c);
    assert.deepEqual(producer.dropped, [9], "the last consumer's end frees it");
    ledger.sending(t, b);
    ledger.ended(producer);
    assert.equal(t.released, true);
    assert.throws(() => ledger.sending(t, c), /a \(pid 1\)\) has stopped/);
    ledger.released("b (pid 2)", ["a (pid 1)#8"]);
    assert.deepEqual(producer.dropped, [9], "nothing is sent to a producer that is gone");
    assert.deepEqual(ledger.list(), []);
  });

  it("a CudaTensor the host forgets is released by garbage collection", async () => {
    const { ledger, producer } = setup();
    (() => {
      ledger.received(exported(10), producer);
    })();
    for (let i = 0; i < 20 && producer.dropped.length === 0; i++) {
      gc();
      await sleep(10);
    }
    assert.deepEqual(producer.dropped, [10]);
  });
});
