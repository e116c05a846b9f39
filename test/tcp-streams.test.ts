// Streams over both transports: a Python generator read with credit, a host iterable read by Python, and a stream
// left early, over the Unix sockets and over TCP+TLS (the path a guest placed on Ray takes).

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Extension, ExtensionManager } from "../src/index.js";
import { fixture, makeManager } from "./helpers.js";

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

for (const transport of ["unix", "tcp"] as const) {
  describe(`streams over the ${transport} transport`, () => {
    let manager: ExtensionManager;
    let ext: Extension;

    before(async () => {
      manager = makeManager();
      ext = await manager.load({
        name: `tcp_stream_${transport}`,
        modulePath: fixture("stream_ext"),
        sandbox: { mode: "disabled" },
        transport,
      });
    });
    after(() => manager.close());

    it("reads a Python generator item by item, with a small window, and keyword arguments", async () => {
      assert.deepEqual(await collect(ext.stream("count", [5, 10])), [10, 11, 12, 13, 14]);
      assert.deepEqual(
        await collect(ext.stream("count", [40], { window: 1 })),
        Array.from({ length: 40 }, (_, i) => i),
      );
      assert.deepEqual(await collect(ext.stream("words", ["a b c"], { kwargs: { upper: true } })), ["A", "B", "C"]);
    });

    it("hands Python a host iterable to read as an async iterator", async () => {
      async function* numbers() {
        for (let i = 1; i <= 5; i++) yield i;
      }
      assert.deepEqual(await ext.call("collect", [numbers()]), [1, 2, 3, 4, 5]);
    });

    it("closes the Python generator when the host leaves the loop early, and serves calls after", async () => {
      const seen: unknown[] = [];
      for await (const item of ext.stream("forever", ["early"])) {
        seen.push(item);
        if (seen.length === 3) break;
      }
      assert.equal(seen.length, 3);
      assert.deepEqual(await collect(ext.stream("count", [2])), [0, 1]);
    });
  });
}
