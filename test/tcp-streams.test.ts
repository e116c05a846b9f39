// Streams over both transports: a Python generator read with credit, a host iterable read by Python, a stream left
// early, and a host service that streams to Python (`async for x in Chat().generate(...)`), over the Unix sockets and
// over TCP+TLS (the path a guest placed on Ray takes).

import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { callingExtension, type Extension, type ExtensionManager } from "../src/index.js";
import { fixture, makeManager, waitFor } from "./helpers.js";

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

/** The host's "Chat" service as test/fixtures/extensions/svcstream_ext declares it, reduced to what these tests read. */
class ChatService {
  readonly callers = new Set<string | undefined>();
  readonly ended = new Set<string>();

  async *generate(prompt: string, n: number): AsyncGenerator<string> {
    for (let i = 0; i < n; i++) {
      await Promise.resolve();
      this.callers.add(callingExtension());
      yield `${prompt}-${i}`;
    }
  }

  async *ticking(tag: string): AsyncGenerator<number> {
    try {
      for (let i = 0; ; i++) {
        yield i;
        await sleep(2);
      }
    } finally {
      this.ended.add(tag);
    }
  }

  async *fail_after(n: number): AsyncGenerator<number> {
    for (let i = 0; i < n; i++) yield i;
    throw new TypeError(`bad item after ${n}`);
  }
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

  describe(`a host service streaming to Python over the ${transport} transport`, () => {
    let manager: ExtensionManager;
    let ext: Extension;
    const chat = new ChatService();
    const name = `svc_stream_${transport}`;

    before(async () => {
      manager = makeManager();
      manager.provide("Chat", chat);
      ext = await manager.load({
        name,
        modulePath: fixture("svcstream_ext"),
        sandbox: { mode: "disabled" },
        transport,
      });
    });
    after(() => manager.close());

    it("delivers the items in order, as the caller's, and 200 of them through a window of 16", async () => {
      assert.deepEqual(await ext.call("collect", ["hi", 3]), ["hi-0", "hi-1", "hi-2"]);
      const many = (await ext.call("collect", ["n", 200])) as string[];
      assert.deepEqual(
        many,
        Array.from({ length: 200 }, (_, i) => `n-${i}`),
      );
      assert.deepEqual([...chat.callers], [name], "callingExtension() inside the host generator");
    });

    it("closes the host's generator when Python breaks out of the loop, and raises its error typed", async () => {
      assert.deepEqual(await ext.call("take", ["brk", 3]), [0, 1, 2]);
      await waitFor(() => chat.ended.has("brk"), 10_000, "the host generator's finally to run");
      assert.deepEqual(await ext.call("failing", [2, "TypeError"]), [[0, 1], "TypeError", "bad item after 2"]);
    });
  });
}
