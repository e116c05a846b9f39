// The one wire check: parseMessage against the headers shared with the Python guest, and value kinds' own fields.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { ProtocolError } from "../src/errors.js";
import { encodeFrame } from "../src/rpc/framing.js";
import { parseMessage } from "../src/rpc/messages.js";
import { RpcPeer } from "../src/rpc/peer.js";
import type { ReleaseMessage } from "../src/rpc/protocol.js";
import type { KindRelease, ValueKind } from "../src/rpc/value-kind.js";
import { duplexPair, peerPair } from "./rpc-helpers.js";

interface Vectors {
  bad: { header: Record<string, unknown>; says: string }[];
  good: Record<string, unknown>[];
}
const vectors = JSON.parse(readFileSync(new URL("./vectors/bad-headers.json", import.meta.url), "utf8")) as Vectors;

describe("parseMessage", () => {
  test("every shared bad header is a ProtocolError that says which field is wrong", () => {
    assert.ok(vectors.bad.length > 25);
    for (const { header, says } of vectors.bad) {
      assert.throws(
        () => parseMessage(structuredClone(header)),
        (err: unknown) => err instanceof ProtocolError && new RegExp(says).test(err.message),
        JSON.stringify(header),
      );
    }
  });

  test("every shared good header parses to itself, kind and fields unchanged", () => {
    for (const header of vectors.good) assert.deepEqual(parseMessage(structuredClone(header)), header);
  });

  test("a header that is not an object is a ProtocolError", () => {
    for (const header of [null, [], "call", 7])
      assert.throws(() => parseMessage(header), /a frame header must be an object/);
  });
});

describe("the peer's one check", () => {
  test("a peer fed any shared bad header closes with that ProtocolError and tells its owner", async () => {
    for (const { header, says } of vectors.bad) {
      const { a, b } = duplexPair();
      let told!: (error: ProtocolError) => void;
      const reported = new Promise<ProtocolError>((resolve) => (told = resolve));
      const peer = new RpcPeer(b, { onProtocolError: (error) => told(error) });
      for (const chunk of encodeFrame(structuredClone(header))) a.write(chunk);
      const error = await reported;
      assert.match(error.message, new RegExp(says), JSON.stringify(header));
      assert.equal(peer.state, "closed");
      assert.equal(peer.closeReason, error);
    }
  });
});

describe("value kinds", () => {
  /** A kind that encodes nothing but owns release fields: records what it is told and keeps its send. */
  function recordingKind(): ValueKind & { send?: (fields: KindRelease) => void; seen: ReleaseMessage[] } {
    const kind: ValueKind & { send?: (fields: KindRelease) => void; seen: ReleaseMessage[] } = {
      tag: "$rec",
      seen: [],
      accepts: () => false,
      encode: () => null,
      decode: () => null,
      bind: (send) => {
        kind.send = send;
      },
      released: (message) => {
        kind.seen.push(message);
      },
    };
    return kind;
  }

  test("a kind sends its own release fields through bind and receives the other side's, checked", async () => {
    const mine = recordingKind();
    const theirs = recordingKind();
    const { a, b, aToB } = peerPair({ kinds: [mine] }, { kinds: [theirs] });
    assert.equal(typeof mine.send, "function", "bind ran when the peer was made");
    mine.send!({ segs: [7, 8], cudaExports: [3] });
    const header = await aToB.waitFor((h) => h.k === "release");
    assert.deepEqual(header, { k: "release", fns: [], segs: [7, 8], cudaExports: [3] });
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.deepEqual(theirs.seen, [{ k: "release", fns: [], segs: [7, 8], cudaExports: [3] }]);
    assert.deepEqual(mine.seen, []);
    a.close();
    b.close();
  });
});
