// Property-based fuzzing of the host's frame decoder, value codec and RPC peer: every input ends in a value or a
// ProtocolError, never an untyped exception, a crash or a hang (fast-check; longer runs: scripts/fuzz.mjs).

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { ProtocolError, RemoteError } from "../src/errors.js";
import { Codec } from "../src/rpc/codec.js";
import { FrameDecoder, type Frame } from "../src/rpc/framing.js";
import { RpcPeer } from "../src/rpc/peer.js";
import { tensorCodec } from "../src/tensor/codec.js";
import {
  chunk,
  fuzzSettings,
  hostileStream,
  splits,
  wellFormedFrame,
  wireValue,
} from "./resilience-fuzz-arbitraries.js";
import { duplexPair, services } from "./rpc-helpers.js";

/** Errors that escaped to the process while a property ran (a handler that threw outside the peer's try). */
const escaped: unknown[] = [];
const onEscape = (err: unknown): void => void escaped.push(err);

before(() => {
  process.on("uncaughtException", onEscape);
  process.on("unhandledRejection", onEscape);
});
after(() => {
  process.off("uncaughtException", onEscape);
  process.off("unhandledRejection", onEscape);
});

function isProtocolError(err: unknown): boolean {
  return err instanceof ProtocolError;
}

/** Small limits, so that the fuzzer reaches each limit's check with small inputs. */
const LIMITS = { maxFrameBytes: 4096, maxHeaderBytes: 2048, maxAttachments: 4 };

describe("fuzz: the host's frame decoder", () => {
  it("turns any byte stream, split anywhere, into frames or one ProtocolError, and stays broken after it", () => {
    const seen = { frames: 0, refused: 0 };
    fc.assert(
      fc.property(hostileStream, splits, (bytes, cuts) => {
        const decoder = new FrameDecoder(() => void seen.frames++, LIMITS);
        let failure: unknown;
        for (const piece of chunk(bytes, cuts)) {
          try {
            decoder.push(piece);
          } catch (err) {
            assert.ok(isProtocolError(err), `untyped decoder failure: ${String(err)}`);
            if (failure !== undefined) assert.equal(err, failure, "a broken decoder throws its first error again");
            if (failure === undefined) seen.refused++;
            failure = err;
          }
        }
        assert.ok(
          decoder.bufferedBytes <= LIMITS.maxFrameBytes + 4,
          `buffered ${decoder.bufferedBytes} bytes past the frame limit`,
        );
      }),
      fuzzSettings(),
    );
    // The control: the generator reaches both outcomes, so the property is not vacuous.
    assert.ok(seen.frames > 0 && seen.refused > 0, JSON.stringify(seen));
  });

  it("decodes every well-formed frame to the header and attachments it was built from, however the stream splits", () => {
    fc.assert(
      fc.property(fc.array(wellFormedFrame, { minLength: 1, maxLength: 4 }), splits, (frames, cuts) => {
        const got: Frame[] = [];
        const decoder = new FrameDecoder((frame) => got.push(frame));
        for (const piece of chunk(Buffer.concat(frames.map((f) => f.bytes)), cuts)) decoder.push(piece);
        assert.equal(got.length, frames.length);
        for (let i = 0; i < frames.length; i++) {
          assert.deepEqual(got[i]!.header, JSON.parse(JSON.stringify(frames[i]!.header)));
          assert.deepEqual(
            got[i]!.attachments.map((a) => Buffer.from(a)),
            frames[i]!.attachments.map((a) => Buffer.from(a)),
          );
        }
        assert.equal(decoder.bufferedBytes, 0);
      }),
      fuzzSettings(),
    );
  });
});

describe("fuzz: the host's value codec", () => {
  const codec = new Codec({
    kinds: [tensorCodec({ transport: "copy", holder: "fuzz" })],
    callables: { exportFn: () => 1, importFn: (id) => () => id },
  });

  it("decodes any tagged value (tensor descriptors included) to a value or a ProtocolError", () => {
    const attachments = fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 3 });
    const seen = { decoded: 0, refused: 0 };
    fc.assert(
      fc.property(wireValue, attachments, (value, bytes) => {
        try {
          codec.decode(structuredClone(value), bytes);
          seen.decoded++;
        } catch (err) {
          assert.ok(isProtocolError(err), `untyped codec failure: ${String(err)}`);
          seen.refused++;
        }
      }),
      fuzzSettings(),
    );
    assert.ok(seen.decoded > 0 && seen.refused > 0, JSON.stringify(seen));
  });
});

describe("fuzz: the host's RPC peer", () => {
  const seen = { open: 0, closed: 0, served: 0 };
  const service = {
    echo: (...args: unknown[]) => {
      seen.served++;
      return args;
    },
    boom: () => {
      throw new TypeError("refused");
    },
  };

  /** Feeds a hostile stream to a fresh peer; resolves once every chunk and what it caused has run. */
  async function feed(
    bytes: Buffer,
    cuts: number[],
  ): Promise<{ peer: RpcPeer; reported: ProtocolError[]; call: Promise<unknown> }> {
    const pair = duplexPair();
    const reported: ProtocolError[] = [];
    const peer = new RpcPeer(pair.a, {
      resolveTarget: services({ svc: service }),
      kinds: [tensorCodec({ transport: "copy", holder: "fuzz" })],
      limits: LIMITS,
      onProtocolError: (err) => reported.push(err),
      onControl: () => {},
    });
    // A call of ours in flight: a hostile answer may settle it, a protocol failure must reject it.
    const call = peer.call("svc", "echo", [1]).then(
      (v) => v,
      (err: unknown) => err,
    );
    for (const piece of chunk(bytes, cuts)) pair.b.write(piece);
    for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
    return { peer, reported, call };
  }

  it("on any byte stream stays open or closes with one ProtocolError; its pending call settles; nothing escapes", async () => {
    await fc.assert(
      fc.asyncProperty(hostileStream, splits, async (bytes, cuts) => {
        const { peer, reported, call } = await feed(bytes, cuts);
        assert.deepEqual(escaped, [], "an error escaped to the process");
        seen[peer.state]++;
        if (peer.state === "closed") {
          assert.ok(isProtocolError(peer.closeReason), `closed with an untyped error: ${String(peer.closeReason)}`);
          assert.equal(reported.length, 1);
          // Settled: by a hostile answer that came first, else by the protocol error.
          const outcome = await call;
          if (outcome instanceof Error && !(outcome instanceof RemoteError)) assert.equal(outcome, peer.closeReason);
        } else {
          assert.equal(reported.length, 0);
          peer.close();
          await call;
        }
      }),
      fuzzSettings(150),
    );
    assert.ok(seen.open > 0 && seen.closed > 0 && seen.served > 0, JSON.stringify(seen));
  });
});
