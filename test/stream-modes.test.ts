// Streams under bwrap, under Landlock and with the sandbox disabled: numpy arrays yielded by a generator arrive as
// shared-memory Tensors (a write on the host shows in Python); a pool streams from one worker; the typed proxy streams.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Extension, ExtensionPool, Tensor } from "../src/index.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import type { SandboxCapabilities } from "../src/sandbox/types.js";
import { nativeStatus } from "../src/tensor/native.js";
import { fixture, makeManager } from "./helpers.js";
import { SANDBOX_MODES, unavailableMode } from "./sandbox-modes.js";
import { NUMPY } from "./tensor-helpers.js";

/** The fixture's API as an application declares it: generator methods typed as AsyncIterable/Generator. */
interface StreamApi {
  count(n: number, start?: number): Generator<number>;
  words(text: string): AsyncGenerator<string>;
  forever(tag: string): Generator<{ i: number; pid: number }>;
  pid(): number;
}

const noAddon = nativeStatus.available ? undefined : `native addon unavailable: ${nativeStatus.reason}`;
let caps: SandboxCapabilities;
const manager = makeManager();
before(async () => {
  caps = await detectSandbox();
});
after(() => manager.close());

for (const mode of SANDBOX_MODES) {
  describe(`streams under ${mode.label}`, () => {
    let ext: Extension<StreamApi> | undefined;
    let skip: string | undefined;
    before(async () => {
      skip = unavailableMode(caps, mode.sandbox);
      if (!skip)
        ext = await manager.load<StreamApi>({
          name: `stream_np_${mode.tag}`,
          modulePath: fixture("stream_ext"),
          dependencies: NUMPY,
          sandbox: mode.sandbox,
        });
    });
    after(() => ext?.stop());

    it("the typed proxy streams a generator method: for-await gets its items, typed", async (t) => {
      if (skip) return t.skip(skip);
      const numbers: number[] = [];
      for await (const n of ext!.proxy.count(4, 1)) numbers.push(n);
      assert.deepEqual(numbers, [1, 2, 3, 4]);
      const words: string[] = [];
      for await (const w of ext!.proxy.words("streams both ways")) words.push(w.toUpperCase());
      assert.deepEqual(words, ["STREAMS", "BOTH", "WAYS"]);
      const pid: Promise<number> = ext!.proxy.pid();
      assert.equal(typeof (await pid), "number");
    });

    it("numpy arrays yielded by a generator arrive as shared memory: a host write shows in Python's array", async (t) => {
      if (skip) return t.skip(skip);
      if (noAddon) return t.skip(noAddon);
      const got: Tensor[] = [];
      for await (const item of ext!.stream("arrays", [3, 1024], { window: 2 })) got.push(item as Tensor);
      assert.deepEqual(
        got.map((x) => [x.isShared, x.shape[0], x.at(0)]),
        [
          [true, 1024, 0],
          [true, 1024, 1],
          [true, 1024, 2],
        ],
      );
      const data = got[2]!.data as Float32Array;
      data[0] = 42.5;
      assert.equal(await ext!.call("kept_first", [2]), 42.5, "the item is the generator's own memory, not a copy");
    });
  });
}

describe("a pool streams", () => {
  let pool: ExtensionPool<StreamApi> | undefined;
  before(async () => {
    pool = await manager.pool<StreamApi>({
      name: "stream_pool",
      modulePath: fixture("stream_ext"),
      sandbox: { mode: "disabled" },
      workers: 2,
    });
  });
  after(() => pool?.stop());

  it("a stream stays on one worker and counts in its inFlight until it is left; its proxy streams too", async () => {
    const stream = pool!.stream("forever", ["pool"], { window: 2 });
    const pids = new Set<number>();
    for (let k = 0; k < 10; k++) pids.add(((await stream.next()).value as { pid: number }).pid);
    assert.equal(pids.size, 1, "every item came from one worker");
    const busy = pool!.workers.find((w) => w.inFlight === 1);
    assert.equal(busy?.pid, [...pids][0], "the stream counts as one call of its worker");
    // The least-busy rule sends the next call to the other worker.
    assert.notEqual(await pool!.call("pid"), busy?.pid);
    await stream.return!();
    assert.deepEqual(
      pool!.workers.map((w) => w.inFlight),
      [0, 0],
      "leaving the stream ends its count",
    );
    const items: number[] = [];
    for await (const n of pool!.proxy.count(3)) items.push(n);
    assert.deepEqual(items, [0, 1, 2]);
    assert.deepEqual(
      pool!.workers.map((w) => w.inFlight),
      [0, 0],
    );
  });
});
