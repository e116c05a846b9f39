// The reader's side of a stream call in memory: the credit it grants, its queue, its end, and how it stops.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CallAbortedError, ProtocolError, RemoteError } from "../src/index.js";
import { failedStream, onceDone, StreamCall } from "../src/rpc/stream-call.js";

/** A StreamCall whose link records what it would send. */
function streamCall(window: number, options: { signal?: AbortSignal; idleTimeoutMs?: number } = {}) {
  const sent: string[] = [];
  const call = new StreamCall(
    {
      credit: (id, n) => sent.push(`credit ${id} ${n}`),
      cancel: (id) => sent.push(`cancel ${id}`),
    },
    7,
    window,
    "extension.gen",
    options.signal,
    options.idleTimeoutMs,
  );
  return { call, sent };
}

describe("a stream call's reader", () => {
  it("grants half a window of credit each time it has taken that many, and never more than it took", async () => {
    const { call, sent } = streamCall(4);
    for (let i = 0; i < 4; i++) call.accept(i);
    assert.equal((await call.next()).value, 0);
    assert.deepEqual(sent, []);
    assert.equal((await call.next()).value, 1);
    assert.deepEqual(sent, ["credit 7 2"]);
    call.accept(4);
    call.accept(5);
    assert.throws(
      () => call.accept(6),
      (e: unknown) => e instanceof ProtocolError && /item 7: more items than the 6 granted/.test(e.message),
    );
  });

  it("hands items to a waiting read, then ends with done after the queue", async () => {
    const { call } = streamCall(2);
    const waiting = call.next();
    call.accept("a");
    assert.deepEqual(await waiting, { done: false, value: "a" });
    call.accept("b");
    call.finish();
    assert.deepEqual(await call.next(), { done: false, value: "b" });
    assert.equal((await call.next()).done, true);
  });

  it("rejects the read after the queued items with the callee's error, once; later reads are done", async () => {
    const { call } = streamCall(4);
    call.accept(1);
    call.finish(new RemoteError({ type: "ValueError", message: "bad" }));
    assert.equal((await call.next()).value, 1);
    await assert.rejects(call.next(), RemoteError);
    assert.equal((await call.next()).done, true);
  });

  it("return() cancels once, answers reads with done, and still counts items that cross the cancel against the credit", async () => {
    const { call, sent } = streamCall(2);
    const waiting = call.next();
    await call.return();
    await call.return();
    assert.deepEqual(sent, ["cancel 7"]);
    assert.equal((await waiting).done, true);
    call.accept("crossed");
    call.accept("crossed");
    assert.throws(() => call.accept("one too many"), ProtocolError);
    assert.equal((await call.next()).done, true);
  });

  it("an abort rejects the waiting read and every later one with CallAbortedError carrying the reason", async () => {
    const controller = new AbortController();
    const { call, sent } = streamCall(2, { signal: controller.signal });
    const waiting = call.next();
    controller.abort(new Error("enough"));
    const error = await waiting.catch((e: unknown) => e);
    assert.ok(error instanceof CallAbortedError && !error.timedOut);
    assert.equal((error.cause as Error).message, "enough");
    await assert.rejects(call.next(), CallAbortedError);
    assert.deepEqual(sent, ["cancel 7"]);
  });

  it("no cancel goes out for a stream that already ended", async () => {
    const { call, sent } = streamCall(2);
    call.finish();
    await call.return();
    assert.deepEqual(sent, []);
  });

  it("the idle timeout runs only while a read waits: a slow reader is never timed out", async (t) => {
    t.mock.timers.enable({ apis: ["setTimeout"] });
    const { call, sent } = streamCall(2, { idleTimeoutMs: 20 });
    call.accept(1);
    t.mock.timers.tick(1000); // no read waiting: no timer runs
    assert.equal((await call.next()).value, 1);
    const waiting = call.next().catch((e: unknown) => e);
    t.mock.timers.tick(19);
    call.accept(2);
    assert.equal(((await waiting) as IteratorResult<unknown>).value, 2, "an item within the timeout disarms it");
    const late = call.next().catch((e: unknown) => e);
    t.mock.timers.tick(20);
    const error = await late;
    assert.ok(error instanceof CallAbortedError && error.timedOut, String(error));
    assert.match(error.message, /no item within 20 ms/);
    assert.deepEqual(sent, ["credit 7 1", "credit 7 1", "cancel 7"], "a window of 2 grants after each item taken");
  });
});

describe("stream helpers", () => {
  it("failedStream rejects its first read and is done after", async () => {
    const stream = failedStream(new TypeError("no"));
    await assert.rejects(stream.next(), TypeError);
    assert.equal((await stream.next()).done, true);
  });

  it("onceDone calls back once, whether the stream ends, fails or is left", async () => {
    let calls = 0;
    const counted = onceDone(failedStream(new Error("x")), () => calls++);
    await counted.next().catch(() => undefined);
    await counted.return!();
    assert.equal(calls, 1);
    const { call } = streamCall(2);
    const left = onceDone(call, () => calls++);
    await left.return!();
    await left.return!();
    assert.equal(calls, 2);
  });
});
