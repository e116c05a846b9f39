// Service streams between two in-memory peers: `a` is the host serving the service "Chat", `b` reads it with stream
// calls as the guest does. The producer's credit, return() on cancel (also one that comes while the method's promise
// is pending), the "does not stream" refusal, and the shared wire vector of the guest's stream call.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { RemoteError } from "../src/errors.js";
import { parseMessage } from "../src/rpc/messages.js";
import { FrameDecoder, type Frame } from "../src/rpc/framing.js";
import { deferred, peerPair, services } from "./rpc-helpers.js";
import { waitFor } from "./helpers.js";
import { VECTORS_PATH, type FrameVector } from "./vectors/make-frames.js";

/** A service whose generators count what they made and say how they ended. */
function chat() {
  const state = { made: 0, ended: "", pending: deferred<AsyncIterable<number>>() };
  const service = {
    async *count(n: number): AsyncGenerator<number> {
      try {
        for (let i = 0; i < n; i++) {
          state.made += 1;
          yield i;
        }
        state.ended = "done";
      } finally {
        state.ended ||= "return";
      }
    },
    later(): Promise<AsyncIterable<number>> {
      return state.pending.promise;
    },
    ping(): string {
      return "pong";
    },
    plain(): { answer: number } {
      return { answer: 42 };
    },
  };
  return { state, service };
}

describe("service streams between two peers", () => {
  it("the producer runs no further than the reader's window, and a break calls the generator's return()", async () => {
    const { state, service } = chat();
    const { a, b } = peerPair({ resolveTarget: services({ Chat: service }) });
    const stream = b.callStream("Chat", "count", [1000], { window: 4 });
    assert.equal((await stream.next()).value, 0);
    await waitFor(() => state.made === 4, 2000, "the window to fill");
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(state.made, 4, "one read, four made: no item past the credit");
    let read = 1;
    for await (const _ of stream) if (++read === 10) break;
    await waitFor(() => state.ended === "return", 2000, "return()");
    assert.ok(state.made - read <= 4, `made ${state.made} with ${read} read`);
    a.close();
    b.close();
  });

  it("a cancel that comes while the method's promise is pending still closes the iterable it resolves to", async () => {
    const { state, service } = chat();
    const { a, b } = peerPair({ resolveTarget: services({ Chat: service }) });
    const stream = b.callStream("Chat", "later", []);
    const first = stream.next();
    assert.equal(await b.call("Chat", "ping", []), "pong", "answered after the stream call: the method was called");
    await stream.return!();
    await first.catch(() => undefined);
    assert.equal(await b.call("Chat", "ping", []), "pong", "answered after the cancel: the host has seen it");
    // An iterator that records return(): a generator never started would skip its finally on return().
    state.pending.resolve({
      [Symbol.asyncIterator]: () => ({
        next: async () => ({ done: false, value: ++state.made }),
        return: async () => {
          state.ended = "return";
          return { done: true, value: undefined };
        },
      }),
    });
    await waitFor(() => state.ended === "return", 2000, "return() on the late iterable");
    assert.equal(state.made, 0, "no item was taken from it");
    await waitFor(() => a.stats.incoming === 0, 2000, "the host to forget the stream");
    a.close();
    b.close();
  });

  it("a method whose result is no async iterable or generator ends the stream with a TypeError naming it", async () => {
    const { service } = chat();
    const { a, b } = peerPair({ resolveTarget: services({ Chat: service }) });
    const error = await b
      .callStream("Chat", "plain", [])
      .next()
      .catch((e: unknown) => e);
    assert.ok(error instanceof RemoteError && error.remoteType === "TypeError", String(error));
    assert.match(error.message, /Chat\.plain does not stream: it returned an object \(Object\)/);
    const unknown = await b
      .callStream("Nope", "count", [])
      .next()
      .catch((e: unknown) => e);
    assert.ok(unknown instanceof RemoteError && unknown.remoteType === "LookupError", String(unknown));
    assert.equal(a.stats.incoming, 0);
    a.close();
    b.close();
  });
});

describe("the service stream call's wire vector", () => {
  it("is a call with target, method, stream and kw that the host's message check takes", () => {
    const vectors = JSON.parse(readFileSync(VECTORS_PATH, "utf8")) as FrameVector[];
    const vector = vectors.find((v) => v.name === "call_service_stream");
    assert.ok(vector, "test/vectors/frames.json has call_service_stream");
    const frames: Frame[] = [];
    new FrameDecoder((frame) => frames.push(frame)).push(Buffer.from(vector.hex, "hex"));
    assert.deepEqual(parseMessage(frames[0]!.header, 16), {
      k: "call",
      id: 17,
      target: "Chat",
      method: "generate",
      stream: 16,
      args: ["hi", 3],
      kw: { upper: true },
    });
  });
});
