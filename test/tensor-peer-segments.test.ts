// Segments by id: what a connection's book lets cross without an fd, and the ids it refuses.

import assert from "node:assert/strict";
import { describe, it, test } from "node:test";
import { ProtocolError } from "../src/errors.js";
import type { FdHold } from "../src/rpc/value-kind.js";
import { SegmentAllocator } from "../src/tensor/allocator.js";
import { validateDescriptor } from "../src/tensor/descriptor.js";
import { nativeStatus, type NativeAddon } from "../src/tensor/native.js";
import { KEEP_AFTER_FREE_MS, PeerSegments } from "../src/tensor/peer-segments.js";
import type { Segment } from "../src/tensor/segment.js";
import { Tensor } from "../src/tensor/tensor.js";
import { ReceivedFrame } from "../src/tensor/wire.js";
import { FdChannel } from "../src/rpc/fd-channel.js";
import { encodeFrame } from "../src/rpc/framing.js";
import { tensorCodec } from "../src/tensor/codec.js";
import { deferred, peerPair, services } from "./rpc-helpers.js";

const skip = nativeStatus.available ? false : `native addon unavailable: ${nativeStatus.reason}`;
const native = (nativeStatus.available ? nativeStatus.addon : undefined) as NativeAddon;

/** A connection's book and what it sent: fd storages hand their hold to `holds`, releases land in `released`. */
function connection() {
  const allocator = new SegmentAllocator();
  const book = new PeerSegments(native);
  const holds: FdHold[] = [];
  const released: number[][] = [];
  book.bind((ids) => released.push(ids));
  const send = (segment: Segment) =>
    book.storage(segment, (_fd, hold) => {
      hold.retain();
      holds.push(hold);
      return 0;
    });
  /** The frame's fds went out (what FdChannel does). */
  const flush = () => {
    for (const hold of holds.splice(0)) {
      hold.sent?.();
      hold.release();
    }
  };
  return { allocator, book, send, flush, released };
}

/** A fresh connection and a 16-float32 tensor whose segment's fd has already gone out on it: it now goes by id. */
function connectionWithSent() {
  const conn = connection();
  const t = Tensor.zeros([16], "float32");
  conn.send(t.segment);
  conn.flush();
  return { ...conn, t };
}

describe("segments by id", { skip }, () => {
  test("a segment goes by fd until its fd went out, then by id alone", () => {
    const { send, flush, book } = connection();
    const t = Tensor.zeros([16], "float32");
    const first = send(t.segment);
    assert.equal(first.fd, 0);
    assert.equal(first.id, t.segment.id);
    assert.equal(send(t.segment).fd, 0, "not kept before the fd was sent");
    flush();
    assert.deepEqual(send(t.segment), { kind: "shm", id: t.segment.id, size: t.segment.size });
    assert.equal(book.size, 1);
    t.release();
    book.close();
  });

  test("an id the extension sends back is our own segment, with no fd and no new mapping", () => {
    const { book, t } = connectionWithSent();
    const back = book.resolve(t.segment.id!, 64);
    assert.equal(back, t.segment);
    back.release();
    t.release();
    book.close();
  });

  test("an unknown id, another connection's id, or more bytes than the segment holds is a ProtocolError", () => {
    const a = connection();
    const b = connection();
    const t = Tensor.zeros([16], "float32");
    a.send(t.segment);
    a.flush();
    assert.throws(() => b.book.resolve(t.segment.id!, 64), ProtocolError, "B was never given A's segment");
    assert.throws(() => a.book.resolve(t.segment.id! + 1, 64), ProtocolError);
    assert.throws(() => a.book.resolve(t.segment.id!, 65), ProtocolError);
    t.release();
    a.book.close();
    b.book.close();
  });

  test("when our last holder goes, the extension is told once; an id it sent meanwhile still maps", async () => {
    const { book, released, t } = connectionWithSent();
    const id = t.segment.id!;
    t.release();
    assert.deepEqual(released, [], "not before KEEP_AFTER_FREE_MS");
    book.flushReleases();
    assert.deepEqual(released, [[id]]);
    const again = book.resolve(id, 64); // crossed our release: mapped anew from the book's own fd
    assert.equal(again.size, 64);
    assert.equal(new Float32Array(again.buffer).length, 16);
    again.release();
    book.flushReleases();
    assert.deepEqual(released, [[id]], "not kept any more: nothing more to release");
    assert.deepEqual(book.released([id]), [id]);
    assert.equal(book.size, 0);
    assert.throws(() => book.resolve(id, 64), ProtocolError, "released: the id is no longer valid");
  });

  test("the extension is told only when the host's last holder of the segment goes", async () => {
    const { send, book, released, t } = connectionWithSent();
    const other = new Tensor(t.segment, { dtype: "float32", shape: [16] }); // a second holder
    t.release();
    book.flushReleases();
    assert.deepEqual(released, []);
    assert.equal(send(other.segment).fd, undefined, "still kept: by id");
    other.release();
    await new Promise((resolve) => setTimeout(resolve, KEEP_AFTER_FREE_MS + 10));
    assert.equal(released.length, 1, "told by the timer");
    book.close();
  });

  test("a segment named again soon after our last holder went stays kept: no release, no fd", () => {
    const { send, book, released, t } = connectionWithSent();
    const id = t.segment.id!;
    t.release();
    const again = book.resolve(id, 64); // the extension sent it back by id: ours again, not mapped yet
    book.flushReleases();
    assert.deepEqual(released, []);
    assert.deepEqual(send(again), { kind: "shm", size: 64, id });
    again.release();
    book.flushReleases();
    assert.deepEqual(released, [[id]]);
    book.close();
  });

  test("a release that crossed our new send of the segment is stale: it stays kept", () => {
    const { send, book, t } = connectionWithSent();
    const id = t.segment.id!;
    assert.deepEqual(book.released([id]), [], "kept: the extension has it again");
    assert.equal(send(t.segment).fd, undefined);
    t.release();
    book.close();
  });

  test("a segment the extension sent by fd is kept: it comes back by id", () => {
    const { book, allocator } = connection();
    const segment = allocator.allocate(64, { shared: true });
    book.received(segment);
    assert.equal(book.resolve(segment.id!, 64), segment);
    segment.release();
    segment.release();
    book.close();
  });

  test("a frame names a segment by id only where the connection allows it", () => {
    const raw = { dtype: "uint8", shape: [4], strides: [1], offset: 0, storage: { kind: "shm", id: 12345, size: 4 } };
    const { descriptor } = validateDescriptor(raw, { fdCount: 0, attachmentSizes: [] });
    assert.deepEqual(descriptor.storage, { kind: "shm", id: 12345, size: 4 });
    assert.throws(
      () => validateDescriptor({ ...raw, storage: { kind: "shm", size: 4 } }, { fdCount: 0, attachmentSizes: [] }),
      ProtocolError,
    );
    const frame = new ReceivedFrame([], []);
    assert.throws(() => frame.decode(raw), ProtocolError);
    frame.close();
  });

  test("a descriptor naming more bytes of a segment than the book has is a ProtocolError", () => {
    const { book, t } = connectionWithSent();
    const frame = new ReceivedFrame([], [], undefined, undefined, (id, size) => book.resolve(id, size));
    const raw = {
      dtype: "float32",
      shape: [32],
      strides: [1],
      offset: 0,
      storage: { kind: "shm", id: t.segment.id, size: 128 },
    };
    assert.throws(() => frame.decode(raw), ProtocolError);
    const ok = frame.decode({ ...raw, shape: [16], storage: { kind: "shm", id: t.segment.id, size: 64 } });
    assert.equal(ok.segment, t.segment);
    ok.release();
    frame.close();
    t.release();
    book.close();
  });
});

describe("segments by id between two peers", { skip }, () => {
  /** A host peer `a` and an extension-like peer `b`, each with its book of what the other keeps. */
  function open(onProtocolError?: (e: ProtocolError) => void) {
    const [aFd, bFd] = native.socketPair("seqpacket");
    const aBook = new PeerSegments(native);
    const bBook = new PeerSegments(native);
    const pair = peerPair(
      {
        kinds: [tensorCodec({ transport: "shm", holder: "b", segments: aBook })],
        fdChannel: new FdChannel(aFd, native),
        onProtocolError,
      },
      {
        kinds: [tensorCodec({ transport: "shm", holder: "a", segments: bBook })],
        fdChannel: new FdChannel(bFd, native),
        resolveTarget: services({ s: { echo: (value: unknown) => value } }),
      },
    );
    const close = () => {
      pair.a.close();
      pair.b.close();
      aBook.close();
      bBook.close();
    };
    return { ...pair, aBook, close };
  }

  it("an echo sends the fd once: later calls and every reply name the segment by id", async () => {
    const { a, aToB, bToA, close } = open();
    const t = Tensor.from(new Float32Array([1, 2, 3]));
    for (let i = 0; i < 3; i++) {
      const back = (await a.call("s", "echo", [t])) as Tensor;
      assert.equal(back.segment, t.segment);
      back.release();
    }
    const calls = aToB.headers.filter((h) => h.k === "call");
    assert.deepEqual(
      calls.map((h) => h.f),
      [1, undefined, undefined],
    );
    assert.deepEqual(
      bToA.headers.filter((h) => h.k === "result").map((h) => h.f),
      [undefined, undefined, undefined],
    );
    t.release();
    close();
  });

  it("an extension that names another connection's segment by id is a protocol error", async () => {
    const other = open();
    const t = Tensor.from(new Float32Array([1, 2]));
    ((await other.a.call("s", "echo", [t])) as Tensor).release(); // the other connection keeps t's segment
    const failed = deferred<ProtocolError>();
    const { streams, close } = open((e) => failed.resolve(e));
    const descriptor = {
      dtype: "float32",
      shape: [2],
      strides: [1],
      offset: 0,
      storage: { kind: "shm", id: t.segment.id, size: 8 },
    };
    const [frame] = encodeFrame({ k: "result", id: 1, value: { $tensor: descriptor }, x: 1 });
    streams.b.write(frame);
    assert.match((await failed.promise).message, /segment \d+, which this extension was never given/);
    t.release();
    close();
    other.close();
  });
});
