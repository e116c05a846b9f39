// Host services that stream to a real extension process: `async for x in Chat().generate(...)` in Python reads a host
// async generator (or any async iterable a service method returns) within the credit Python grants; break, aclose()
// and a cancelled task close the host's iterator; errors mid-stream arrive typed; refusals are typed; many at once.

import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { callingExtension, type Extension } from "../src/index.js";
import { fixture, makeManager, waitFor } from "./helpers.js";

class QuotaError extends Error {
  override name = "QuotaError";
}

/** The host's "Chat" service: records how far each tagged generator ran and how it ended. */
class ChatService {
  readonly made = new Map<string, number>();
  readonly ended = new Map<string, string>();
  callers = new Set<string | undefined>();

  async *generate(prompt: string, n?: number | null, options?: { upper?: boolean }): AsyncGenerator<string> {
    const text = options?.upper === true ? prompt.toUpperCase() : prompt;
    for (let i = 0; n === undefined || n === null || i < n; i++) {
      await Promise.resolve();
      this.callers.add(callingExtension());
      this.made.set(prompt, (this.made.get(prompt) ?? 0) + 1);
      yield `${text}-${i}`;
    }
  }

  /** Yields every few milliseconds until closed; `finally` records the return(). */
  async *ticking(tag: string): AsyncGenerator<number> {
    try {
      for (let i = 0; ; i++) {
        this.made.set(tag, i + 1);
        yield i;
        await sleep(5);
      }
    } finally {
      this.ended.set(tag, "return");
    }
  }

  /** Not generator functions: a Readable, a promise of an async iterable, a sync generator, an array (refused). */
  numbers(how: string, n: number): unknown {
    const values = Array.from({ length: n }, (_, i) => i);
    if (how === "readable") return Readable.from(values);
    if (how === "promise") return Promise.resolve(Readable.from(values));
    if (how === "sync")
      return (function* () {
        yield* values;
      })();
    return values;
  }

  async *fail_after(n: number, error: string): AsyncGenerator<number> {
    for (let i = 0; i < n; i++) yield i;
    if (error === "TypeError") throw new TypeError(`bad item after ${n}`);
    throw new QuotaError(`quota spent after ${n}`);
  }

  not_streaming(): number {
    return 42;
  }

  produced(tag: string): number {
    return this.made.get(tag) ?? 0;
  }
}

const manager = makeManager();
const chat = new ChatService();
let ext: Extension;

before(async () => {
  manager.provide("Chat", chat);
  manager.provide("Hidden", { async *generate() {} });
  ext = await manager.load({
    name: "svcstream_main",
    modulePath: fixture("svcstream_ext"),
    sandbox: { mode: "disabled" },
    services: ["Chat"],
  });
});
after(() => manager.close());

describe("a host service streams to Python", () => {
  it("async for over a host async generator gets its items in order, with keyword arguments, as the caller", async () => {
    assert.deepEqual(await ext.call("collect", ["hi", 3]), ["hi-0", "hi-1", "hi-2"]);
    assert.deepEqual(await ext.call("collect", ["up", 2, true]), ["UP-0", "UP-1"]);
    assert.deepEqual(await ext.call("collect", ["none", 0]), [], "a stream of no items ends at once");
    assert.deepEqual([...chat.callers], ["svcstream_main"], "callingExtension() inside the generator, after awaits");
  });

  it("a method that returns an async iterable, a promise of one or a generator object streams; an array does not", async () => {
    assert.deepEqual(
      await ext.call("numbers", ["readable", 20]),
      Array.from({ length: 20 }, (_, i) => i),
    );
    assert.deepEqual(await ext.call("numbers", ["promise", 3]), [0, 1, 2]);
    assert.deepEqual(await ext.call("numbers", ["sync", 3]), [0, 1, 2]);
    await assert.rejects(
      ext.call("numbers", ["array", 3]),
      /TypeError: Chat\.numbers does not stream: it returned an array/,
    );
  });

  it("backpressure: a Python reader that stops reading holds the host generator to its window", async () => {
    const window = 4;
    const seen = (await ext.call("read_slowly", ["bp", 40, window])) as [number, number][];
    const [, afterOne] = seen[0]!;
    assert.ok(afterOne <= window, `made ${afterOne} items with one read`);
    assert.equal(seen[7]![1], window, "eight round trips after one read: exactly the window made, no more");
    for (const [read, made] of seen) assert.ok(made - read <= window, `made ${made} with ${read} read`);
    assert.equal(seen.at(-1)![0], 40);
  });

  it("break out of async for closes the host iterator: its finally runs", async () => {
    assert.deepEqual(await ext.call("take", ["brk", 3]), [0, 1, 2]);
    await waitFor(() => chat.ended.get("brk") === "return", 5000, "the host generator's finally");
  });

  it("aclose() and cancelling the task waiting in a read close the host iterator too", async () => {
    assert.deepEqual(await ext.call("close_after", ["acl", 2]), [0, 1]);
    await waitFor(() => chat.ended.get("acl") === "return", 5000, "return() after aclose()");
    assert.equal(await ext.call("cancel_reader", ["task"]), "cancelled");
    await waitFor(() => chat.ended.get("task") === "return", 5000, "return() after the task's cancel");
  });

  it("an extension method may return the stream to a host that streams it; leaving it closes the service's iterator", async () => {
    const items: unknown[] = [];
    for await (const item of ext.stream("relay", ["relay"], { window: 2 })) if (items.push(item) === 5) break;
    assert.deepEqual(items, [0, 1, 2, 3, 4]);
    await waitFor(() => chat.ended.get("relay") === "return", 5000, "return() through the extension");
  });

  it("an error thrown mid-stream reaches Python after the items before it, as the same type", async () => {
    assert.deepEqual(await ext.call("failing", [2, "TypeError"]), [[0, 1], "TypeError", "bad item after 2"]);
    const [items, type, message] = (await ext.call("failing", [1, "QuotaError"])) as [number[], string, string];
    assert.deepEqual([items, type], [[0], "RemoteError"]);
    assert.match(message, /QuotaError.*quota spent after 1/);
  });

  it("a method that does not stream, one that does not exist and an ungranted service are refused, typed", async () => {
    const [type, message] = (await ext.call("refused", ["not_streaming"])) as [string, string];
    assert.equal(type, "TypeError");
    assert.match(message, /^Chat\.not_streaming does not stream: it returned a number, not an async iterable/);
    assert.deepEqual(await ext.call("refused", ["no_such_method"]), [
      "AttributeError",
      '"Chat" has no public method "no_such_method"',
    ]);
    assert.deepEqual(await ext.call("refused", ["hidden"]), ["LookupError", 'no service named "Hidden"']);
    assert.equal(ext.state, "ready");
  });

  it("many streams at once each get their own items in order, with calls between their reads", async () => {
    const streams = (await ext.call("many", [40, 12])) as string[][];
    assert.equal(streams.length, 40);
    streams.forEach((items, i) =>
      assert.deepEqual(
        items,
        Array.from({ length: 12 }, (_, k) => `s${i}-${k}`),
      ),
    );
  });

  it("stopping the extension mid-stream closes the host iterator", async () => {
    const other = await manager.load({
      name: "svcstream_stop",
      modulePath: fixture("svcstream_ext"),
      sandbox: { mode: "disabled" },
      services: ["Chat"],
    });
    const reading = other.call("take", ["stop", 1_000_000]).catch((e: unknown) => e);
    await waitFor(() => (chat.made.get("stop") ?? 0) >= 3, 5000, "the stream to run");
    await other.stop();
    await reading;
    await waitFor(() => chat.ended.get("stop") === "return", 5000, "return() after the stop");
  });
});
