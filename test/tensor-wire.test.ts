// Tensors through descriptors: shared segments by fd over a real socket, copies as attachments, hostile frames.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { SegmentAllocator } from "../src/tensor/allocator.js";
import { nativeStatus, type NativeAddon } from "../src/tensor/native.js";
import { Tensor } from "../src/tensor/tensor.js";
import { encodeTensor, ReceivedFrame, type TensorSink } from "../src/tensor/wire.js";

const skip = nativeStatus.available ? false : `native addon unavailable: ${nativeStatus.reason}`;
const native = (nativeStatus.available ? nativeStatus.addon : undefined) as NativeAddon;

function sink(): TensorSink & { fds: number[]; attachments: Uint8Array[] } {
  const fds: number[] = [];
  const attachments: Uint8Array[] = [];
  return {
    fds,
    attachments,
    addFd: (fd) => (fds.includes(fd) ? fds.indexOf(fd) : fds.push(fd) - 1),
    attach: (bytes) => attachments.push(bytes) - 1,
  };
}

/** Sends `fds` through a socketpair and returns the received duplicates, as the peer would get them. */
function passFds(fds: number[]): number[] {
  if (fds.length === 0) return [];
  const [a, b] = native.socketPair();
  native.sendFds(b, new Uint8Array([0]), fds);
  const got = native.recvFds(a, fds.length)!;
  native.closeFd(a);
  native.closeFd(b);
  return got.fds;
}

describe("tensor wire", () => {
  test("copy transport: the elements travel compacted as one attachment", () => {
    const t = Tensor.from(new Int16Array([1, 2, 3, 4, 5, 6]), [2, 3]);
    const out = sink();
    const descriptor = encodeTensor(t.transpose(0, 1), out, "copy");
    assert.deepEqual(descriptor, {
      dtype: "int16",
      shape: [3, 2],
      strides: [2, 1],
      offset: 0,
      storage: { kind: "bytes", attachment: 0 },
    });
    assert.equal(out.attachments[0]!.byteLength, 12);
    const framed = new Uint8Array(13);
    framed.set(out.attachments[0]!, 1); // an attachment at an odd offset of its frame
    const frame = new ReceivedFrame([], [framed.subarray(1)]);
    const back = frame.decode(JSON.parse(JSON.stringify(descriptor)));
    assert.deepEqual([...back.toArray()], [1, 4, 2, 5, 3, 6]);
    frame.close();
  });

  test("a CUDA descriptor cannot be read by the host", () => {
    const frame = new ReceivedFrame([], []);
    const raw = {
      dtype: "float32",
      shape: [1],
      strides: [1],
      offset: 0,
      storage: { kind: "cuda", device: 0, size: 4, ipc: {} },
    };
    assert.throws(() => frame.decode(raw), {
      code: "ERR_PYISOLATE_PROTOCOL",
      message: /CUDA tensor cannot be read by the host/,
    });
  });

  describe("shared memory", { skip }, () => {
    test("a tensor and a view of it cross as one fd and arrive as one mapping of the same memory", () => {
      const t = Tensor.from(new Float32Array([0, 1, 2, 3, 4, 5]), [2, 3]);
      const view = t.narrow(1, 1, 2);
      const out = sink();
      const descriptors = [encodeTensor(t, out), encodeTensor(view, out)];
      assert.equal(out.fds.length, 1);
      assert.deepEqual(descriptors[1], {
        dtype: "float32",
        shape: [2, 2],
        strides: [3, 1],
        offset: 4,
        storage: { kind: "shm", fd: 0, size: 24 },
      });
      const frame = new ReceivedFrame(passFds(out.fds), []);
      const [a, b] = JSON.parse(JSON.stringify(descriptors)).map((d: unknown) => frame.decode(d)) as Tensor[];
      frame.close();
      assert.equal(a!.segment, b!.segment, "one import per fd");
      assert.equal(a!.segment.kind, "memfd");
      assert.deepEqual([...b!.toArray()], [1, 2, 4, 5]);
      (a!.data as Float32Array)[5] = 50;
      assert.equal(t.at(1, 2), 50, "the receiver's writes land in the sender's memory");
      a!.release();
      assert.equal(b!.at(1, 1), 50, "b still holds the segment");
      b!.release();
      assert.equal(b!.segment.released, true);
      t.release();
      view.release();
    });

    test("a heap tensor goes as an attachment even when shared memory is asked for", () => {
      const heap = Tensor.zeros([2], "float64", { shared: false });
      const out = sink();
      assert.equal(encodeTensor(heap, out).storage.kind, "bytes");
      assert.equal(out.fds.length, 0);
    });

    test("hostile frames: a size beyond the file, or growing on reuse, is refused and the fd closed", () => {
      const allocator = new SegmentAllocator();
      const segment = allocator.allocate(64);
      const [fd] = passFds([segment.fd]);
      const frame = new ReceivedFrame([fd!], [], allocator);
      const raw = (size: number, shape: number[]) => ({
        dtype: "uint8",
        shape,
        strides: [1],
        offset: 0,
        storage: { kind: "shm", fd: 0, size },
      });
      assert.throws(() => frame.decode(raw(65, [65])), {
        code: "ERR_PYISOLATE_PROTOCOL",
        message: /holds 64 bytes, less than the 65/,
      });
      assert.throws(() => native.fstatSize(fd!), { code: "EBADF" });
      assert.throws(() => frame.decode(raw(64, [64])), /already used/);
      frame.close();

      const [again] = passFds([segment.fd]);
      const second = new ReceivedFrame([again!], [], allocator);
      second.decode(raw(32, [32])).release();
      assert.throws(() => second.decode(raw(64, [64])), /declared with 64 bytes after 32/);
      assert.throws(() => second.decode(raw(32, [33])), /past the end of its 32-byte storage/);
      second.close();
      segment.release();
    });

    test("close() closes fds no descriptor used", () => {
      const segment = new SegmentAllocator().allocate(8);
      const fds = passFds([segment.fd, segment.fd]);
      new ReceivedFrame(fds, []).close();
      for (const fd of fds) assert.throws(() => native.fstatSize(fd), { code: "EBADF" });
      segment.release();
    });
  });
});
