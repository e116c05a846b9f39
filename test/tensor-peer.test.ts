// Two RPC peers in one process with an fd channel between them: tensors by fd, many fds, backpressure, copies, lies.

import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { ProtocolError } from "../src/errors.js";
import { FdChannel } from "../src/rpc/fd-channel.js";
import { encodeFrame } from "../src/rpc/framing.js";
import { tensorCodec } from "../src/tensor/codec.js";
import { nativeStatus, type NativeAddon } from "../src/tensor/native.js";
import { Tensor } from "../src/tensor/tensor.js";
import { deferred, peerPair, services, type PeerPair } from "./rpc-helpers.js";

const skip = nativeStatus.available ? false : `native addon unavailable: ${nativeStatus.reason}`;
const native = (nativeStatus.available ? nativeStatus.addon : undefined) as NativeAddon;

type Connected = PeerPair & { bChannel: FdChannel | undefined };

function connected(transport: "shm" | "copy", onProtocolError?: (e: ProtocolError) => void): Connected {
  const [aFd, bFd] = transport === "shm" ? native.socketPair("seqpacket") : [undefined, undefined];
  const bChannel = bFd === undefined ? undefined : new FdChannel(bFd, native);
  const service = {
    echo: (value: unknown) => value,
    sum: (t: Tensor) => Array.from(t.toArray() as Float32Array).reduce((x, y) => x + y, 0),
    write: (t: Tensor, value: number) => {
      (t.data as Float32Array)[0] = value;
    },
  };
  const pair = peerPair(
    {
      kinds: [tensorCodec({ transport, holder: "b" })],
      fdChannel: aFd === undefined ? undefined : new FdChannel(aFd, native),
      onProtocolError,
    },
    { kinds: [tensorCodec({ transport, holder: "a" })], fdChannel: bChannel, resolveTarget: services({ s: service }) },
  );
  return { ...pair, bChannel };
}

describe("tensors between two peers", { skip }, () => {
  const pairs: Connected[] = [];
  const open = (transport: "shm" | "copy", onProtocolError?: (e: ProtocolError) => void) => {
    const pair = connected(transport, onProtocolError);
    pairs.push(pair);
    return pair;
  };
  after(() => {
    for (const pair of pairs) {
      pair.a.close();
      pair.b.close();
    }
  });

  it("a tensor crosses by fd: the other side writes into the same memory, and an echo is the same segment", async () => {
    const { a, aToB } = open("shm");
    const t = Tensor.from(new Float32Array([1, 2, 3]));
    await a.call("s", "write", [t, 5]);
    assert.equal(t.at(0), 5);
    const back = (await a.call("s", "echo", [t])) as Tensor;
    assert.equal(back.segment, t.segment);
    const header = aToB.headers.find((h) => h.k === "call" && h.method === "echo")!;
    assert.equal(header.f, 1);
    assert.equal(header.a, undefined, "no bytes in the frame");
  });

  it("300 tensors in one call (more fds than one message carries) all arrive", async () => {
    const { a } = open("shm");
    const tensors = Array.from({ length: 300 }, (_, i) => Tensor.from(new Float32Array([i])));
    const back = (await a.call("s", "echo", [tensors])) as Tensor[];
    assert.equal(back.length, 300);
    back.forEach((t, i) => assert.equal(t.segment, tensors[i]!.segment));
  });

  it("thousands of calls in flight at once keep their fds in order (the fd socket fills and drains)", async () => {
    const { a } = open("shm");
    const tensors = Array.from({ length: 2000 }, (_, i) => Tensor.from(new Float32Array([i, 1])));
    const sums = await Promise.all(tensors.map((t) => a.call("s", "sum", [t])));
    assert.deepEqual(
      sums,
      tensors.map((_, i) => i + 1),
    );
  });

  it("copy transport: the bytes are one binary attachment, never JSON numbers or base64", async () => {
    const { a, aToB } = open("copy");
    const t = Tensor.from(new Float32Array(1000).fill(1.5), [10, 100]);
    assert.equal(await a.call("s", "sum", [t]), 1500);
    const header = aToB.headers.find((h) => h.k === "call" && h.method === "sum")!;
    assert.deepEqual(header.a, [4000]);
    assert.equal(header.f, undefined);
    assert.ok(JSON.stringify(header).length < 300, "the header holds the descriptor only");
  });

  it("a frame that announces fds which never came is a protocol error", async () => {
    const failed = deferred<ProtocolError>();
    const { streams } = open("shm", (e) => failed.resolve(e));
    const [frame] = encodeFrame({ k: "result", id: 1, value: null, f: 2 });
    streams.b.write(frame);
    const error = await failed.promise;
    assert.match(error.message, /announced 2 file descriptors but 0 arrived/);
  });

  it("a descriptor that reaches past its segment is refused", async () => {
    const failed = deferred<ProtocolError>();
    const { streams, bChannel } = open("shm", (e) => failed.resolve(e));
    const t = Tensor.from(new Float32Array([1, 2]));
    // Send a real fd but claim more bytes than its 8.
    native.sendFds(bChannel!.fd, Buffer.from("1"), [t.segment.fd]);
    const descriptor = {
      dtype: "float32",
      shape: [4],
      strides: [1],
      offset: 0,
      storage: { kind: "shm", fd: 0, size: 16 },
    };
    const [frame] = encodeFrame({ k: "result", id: 1, value: { $tensor: descriptor }, x: 1, f: 1 });
    streams.b.write(frame);
    assert.match((await failed.promise).message, /holds 8 bytes, less than the 16 declared/);
  });
});
