// The native addon on its own: memfd, mmap, munmap, seals, errors, fd passing in-process, and freed memory.

import assert from "node:assert/strict";
import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { describe, test } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { SegmentAllocator } from "../src/tensor/allocator.js";
import { nativeStatus, type NativeAddon } from "../src/tensor/native.js";
import { Tensor } from "../src/tensor/tensor.js";
import { whileMeasuringShmem } from "./tensor-helpers.js";

const skip = nativeStatus.available ? false : `native addon unavailable: ${nativeStatus.reason}`;
const native = (nativeStatus.available ? nativeStatus.addon : undefined) as NativeAddon;

const F_SEAL_SEAL = 1;
const F_SEAL_SHRINK = 2;
const F_SEAL_GROW = 4;

/**
 * Shared memory this process has mapped and touched (RssShmem), not the machine-wide Shmem: other processes'
 * segments (another test run, another user) cannot move it.
 */
function shmemKiB(): number {
  const match = /^RssShmem:\s+(\d+) kB/m.exec(readFileSync("/proc/self/status", "utf8"));
  assert.ok(match, "/proc/self/status has an RssShmem line");
  return Number(match[1]);
}

/** This process's open memfds: with none left and nothing mapped, the kernel has freed the pages. */
function openMemfds(): number {
  return readdirSync("/proc/self/fd").filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith("/memfd:");
    } catch {
      return false; // closed while listing (the readdir's own fd)
    }
  }).length;
}

describe("native addon", { skip }, () => {
  test("memfd: create, map twice, write through one mapping, read through the other", () => {
    const fd = native.memfdCreate("test", 1 << 20);
    try {
      assert.equal(native.fstatSize(fd), 1 << 20);
      const seals = native.getSeals(fd);
      assert.ok(seals !== null && (seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) === 7, `sealed (${seals})`);
      const a = new Uint8Array(native.mmap(fd, 1 << 20));
      const b = new Float64Array(native.mmap(fd, 1 << 20));
      assert.equal(a[12345], 0, "fresh memory is zero");
      b[10] = Math.PI;
      assert.equal(new Float64Array(a.buffer)[10], Math.PI);
      assert.equal(native.munmap(a.buffer), true);
      assert.equal(native.munmap(b.buffer), true);
    } finally {
      native.closeFd(fd);
    }
  });

  test("a mapping at a page offset sees the right bytes", () => {
    const page = native.pageSize;
    const fd = native.memfdCreate("offset", 3 * page);
    const whole = new Uint8Array(native.mmap(fd, 3 * page));
    whole[page] = 7;
    const tail = new Uint8Array(native.mmap(fd, page, page));
    assert.equal(tail[0], 7);
    assert.throws(() => native.mmap(fd, page, 1), { code: "EINVAL", message: /mmap .*failed: EINVAL/ });
    native.munmap(whole.buffer);
    native.munmap(tail.buffer);
    native.closeFd(fd);
  });

  test("munmap detaches: views become empty, a second munmap and foreign buffers answer false", () => {
    const fd = native.memfdCreate("detach", 4096);
    const buffer = native.mmap(fd, 4096);
    const view = new Int32Array(buffer);
    view[0] = 1;
    assert.equal(native.munmap(buffer), true);
    assert.equal(buffer.byteLength, 0);
    assert.equal(view.length, 0);
    assert.equal(view[0], undefined);
    assert.equal(native.munmap(buffer), false);
    assert.equal(native.munmap(new ArrayBuffer(16)), false);
    native.closeFd(fd);
  });

  test("zero size: memfd of 0 bytes maps to an empty buffer", () => {
    const fd = native.memfdCreate("empty", 0);
    assert.equal(native.fstatSize(fd), 0);
    assert.equal(native.mmap(fd, 0).byteLength, 0);
    native.closeFd(fd);
  });

  test("errors name the call and the errno", () => {
    const fd = native.memfdCreate("closed", 16);
    native.closeFd(fd);
    assert.throws(() => native.closeFd(fd), {
      code: "EBADF",
      syscall: "close",
      message: "close failed: EBADF (Bad file descriptor)",
    });
    assert.throws(() => native.mmap(fd, 16), { code: "EBADF", message: /^mmap failed: EBADF/ });
    assert.throws(() => native.fstatSize(fd), { code: "EBADF", message: /^fstat failed: EBADF/ });
    assert.throws(() => native.memfdCreate("x", -1), { code: "ERR_INVALID_ARG_VALUE" });
    assert.throws(() => native.memfdCreate("x", 1.5), { code: "ERR_INVALID_ARG_VALUE" });
    const small = native.memfdCreate("huge-map", 16);
    assert.throws(() => native.mmap(small, 2 ** 52), { code: "ENOMEM", message: /^mmap failed: ENOMEM/ });
    native.closeFd(small);
    const [host, child] = native.socketPair();
    assert.throws(() => native.fstatSize(host), { code: "EINVAL", message: /not a regular file/ });
    assert.throws(() => native.sendFds(host, new Uint8Array(0), []), { code: "ERR_INVALID_ARG_VALUE" });
    assert.throws(() => native.sendFds(host, new Uint8Array(1), [1_000_000]), {
      code: "EBADF",
      message: /^sendmsg failed: EBADF/,
    });
    native.closeFd(host);
    native.closeFd(child);
  });

  test("tmpfile fallback: an unnamed, unsealable file in a private folder", () => {
    const fd = native.tmpfileCreate(tmpdir(), 8192);
    assert.equal(native.fstatSize(fd), 8192);
    assert.equal(native.getSeals(fd), null);
    const view = new Uint8Array(native.mmap(fd, 8192));
    view[8191] = 9;
    assert.equal(new Uint8Array(native.mmap(fd, 8192))[8191], 9);
    native.closeFd(fd);
    assert.throws(() => native.tmpfileCreate("/nonexistent-dir-for-test", 10), { message: /failed: ENOENT/ });
  });

  test("fd passing in-process: bytes and fds arrive together; EAGAIN is null; truncation is reported", () => {
    for (const kind of ["seqpacket", "stream"] as const) {
      const [a, b] = native.socketPair(kind);
      assert.equal(native.recvFds(a, 4), null, "nothing waiting: null, not a block");
      const fd = native.memfdCreate("pass", 64);
      new Uint8Array(native.mmap(fd, 64))[3] = 33;
      assert.equal(native.sendFds(b, new TextEncoder().encode("hi"), [fd, fd]), 2);
      const got = native.recvFds(a, 4);
      assert.ok(got);
      assert.equal(got.bytes.toString(), "hi");
      assert.equal(got.fds.length, 2);
      assert.equal(got.truncated, false);
      assert.equal(new Uint8Array(native.mmap(got.fds[0]!, 64))[3], 33);
      got.fds.forEach((f) => native.closeFd(f));
      assert.equal(native.sendFds(b, new Uint8Array([1]), [fd, fd, fd]), 1);
      const cut = native.recvFds(a, 1);
      assert.equal(cut?.fds.length, 1);
      assert.equal(cut?.truncated, true);
      cut?.fds.forEach((f) => native.closeFd(f));
      native.closeFd(b);
      assert.equal(native.recvFds(a, 1)?.bytes.length, 0, "peer closed: empty bytes");
      native.closeFd(a);
      native.closeFd(fd);
    }
  });

  test("a full non-blocking socket answers null instead of blocking", () => {
    const [a, b] = native.socketPair("stream");
    const chunk = new Uint8Array(1 << 16);
    let sent: number | null = 0;
    let rounds = 0;
    while (sent !== null && rounds++ < 10_000) sent = native.sendFds(a, chunk, []);
    assert.equal(sent, null);
    native.closeFd(a);
    native.closeFd(b);
  });

  test("a released 64 MB segment gives its memory back (unmapped, its memfd closed)", () =>
    whileMeasuringShmem(() => {
      const size = 64 << 20;
      const allocator = new SegmentAllocator({ memfd: true });
      const memfdsBefore = openMemfds();
      const before = shmemKiB();
      const segment = allocator.allocate(size);
      new Uint8Array(segment.buffer).fill(1);
      const touched = shmemKiB();
      const view = new Uint8Array(segment.buffer);
      assert.equal(segment.release(), true);
      const after = shmemKiB();
      assert.equal(view.length, 0, "views of a released segment are empty");
      const mib = (kib: number) => (kib / 1024).toFixed(1);
      assert.ok(touched - before >= 60 * 1024, `touching grew Shmem by ${mib(touched - before)} MiB`);
      assert.ok(touched - after >= 60 * 1024, `release shrank Shmem by only ${mib(touched - after)} MiB`);
      assert.equal(openMemfds(), memfdsBefore, "the segment's memfd is closed");
    }));

  test("a dropped tensor gives its memory back after garbage collection", () =>
    whileMeasuringShmem(async () => {
      setFlagsFromString("--expose-gc");
      const gc = runInNewContext("gc") as () => void;
      const memfdsBefore = openMemfds();
      const before = shmemKiB();
      let tensor: Tensor | undefined = Tensor.zeros([16, 1 << 20], "float32");
      (tensor.data as Float32Array).fill(2);
      const touched = shmemKiB();
      // eslint-disable-next-line no-useless-assignment -- dropping the last reference is what lets GC free it
      tensor = undefined;
      let after = touched;
      for (let round = 0; round < 20 && touched - after < 60 * 1024; round++) {
        gc();
        await new Promise((resolve) => setTimeout(resolve, 10));
        after = shmemKiB();
      }
      assert.ok(touched - before >= 60 * 1024, "the tensor was in shared memory");
      assert.ok(touched - after >= 60 * 1024, `GC freed only ${((touched - after) / 1024).toFixed(1)} MiB`);
      assert.equal(openMemfds(), memfdsBefore, "the tensor's memfd is closed");
    }));

  test("timing: an 800 MB memfd and mapping (creation is lazy; the fill touches every page)", (t) =>
    whileMeasuringShmem(() => {
      const size = 3 * 8192 * 8192 * 4;
      const allocator = new SegmentAllocator({ memfd: true });
      const start = process.hrtime.bigint();
      const segment = allocator.allocate(size);
      const created = process.hrtime.bigint();
      new Float32Array(segment.buffer).fill(1.5);
      const filled = process.hrtime.bigint();
      segment.release();
      const released = process.hrtime.bigint();
      const ms = (a: bigint, b: bigint) => (Number(b - a) / 1e6).toFixed(2);
      t.diagnostic(
        `800 MB memfd+mmap ${ms(start, created)} ms, fill ${ms(created, filled)} ms, release ${ms(filled, released)} ms`,
      );
      assert.ok(Number(created - start) / 1e6 < 100, "creating and mapping costs no per-page work");
    }));
});
