// fd passing with a real python3 child over a socketpair: host -> child, child -> host, and a timed round trip.

import assert from "node:assert/strict";
import { spawn, type ChildProcessByStdio } from "node:child_process";
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { SegmentAllocator } from "../src/tensor/allocator.js";
import { nativeStatus, type NativeAddon } from "../src/tensor/native.js";

const skip = nativeStatus.available ? false : `native addon unavailable: ${nativeStatus.reason}`;
const native = (nativeStatus.available ? nativeStatus.addon : undefined) as NativeAddon;

/** The child: one command per stdin line, one JSON reply per stdout line; fds travel on fd 3 (seqpacket). */
const CHILD = String.raw`
import errno, fcntl, json, mmap, os, socket, sys
sock = socket.socket(fileno=3)
def reply(value):
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()
def pattern(size):
    return (bytes(range(251)) * (size // 251 + 1))[:size]
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "read":
        msg, fds, flags, _ = socket.recv_fds(sock, 1024, 4)
        fd = fds[0]
        size = os.fstat(fd).st_size
        try:
            os.ftruncate(fd, 0)
            shrink = "allowed"
        except OSError as e:
            shrink = errno.errorcode[e.errno]
        with mmap.mmap(fd, size) as m:
            first = list(m[:8])
            same = m[:size] == pattern(size)
            m[8:13] = b"child"
        os.close(fd)
        reply({"msg": msg.decode(), "size": size, "first": first, "pattern": same, "shrink": shrink})
    elif cmd[0] == "make":
        size, sealed = int(cmd[1]), cmd[2] == "sealed"
        fd = os.memfd_create("child", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        os.ftruncate(fd, size)
        with mmap.mmap(fd, size) as m:
            m[:] = pattern(size)
        if sealed:
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW)
        socket.send_fds(sock, [b"made"], [fd])
        os.close(fd)
        reply({"sent": size})
    elif cmd[0] == "echo":
        msg, fds, flags, _ = socket.recv_fds(sock, 64, 4)
        socket.send_fds(sock, [msg], fds)
        for fd in fds:
            os.close(fd)
        reply("ok")
`;

function pattern(size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = i % 251;
  return out;
}

describe("fd passing with a python3 child", { skip }, () => {
  let child: ChildProcessByStdio<Writable, Readable, Readable>;
  let hostFd: number;
  let lines: AsyncIterator<string>;
  let stderr = "";
  const allocator = new SegmentAllocator({ memfd: true });

  async function ask(command: string): Promise<unknown> {
    child.stdin.write(`${command}\n`);
    const next = await lines.next();
    assert.equal(next.done, false, `child ended; stderr: ${stderr}`);
    return JSON.parse(next.value);
  }

  before(() => {
    const [host, childEnd] = native.socketPair("seqpacket");
    hostFd = host;
    child = spawn("python3", ["-c", CHILD], { stdio: ["pipe", "pipe", "pipe", childEnd] }) as ChildProcessByStdio<
      Writable,
      Readable,
      Readable
    >;
    native.closeFd(childEnd);
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  });

  after(() => {
    child.stdin.end();
    native.closeFd(hostFd);
  });

  test("host -> child: the child maps the host's memfd, sees its bytes, cannot shrink it, and writes back", async () => {
    const size = 1 << 20;
    const segment = allocator.allocate(size);
    const view = new Uint8Array(segment.buffer);
    view.set(pattern(size));
    assert.equal(native.sendFds(hostFd, new TextEncoder().encode("tensor-1"), [segment.fd]), 8);
    const answer = await ask("read");
    assert.deepEqual(answer, {
      msg: "tensor-1",
      size,
      first: [0, 1, 2, 3, 4, 5, 6, 7],
      pattern: true,
      shrink: "EPERM",
    });
    assert.equal(new TextDecoder().decode(view.subarray(8, 13)), "child", "the child's write is in the host's mapping");
    segment.release();
  });

  test("child -> host: a sealed memfd is mapped (zero-copy); an unsealed one is refused and closed, never read", async () => {
    const size = 3 * 4096 + 17;
    for (const sealed of ["sealed", "unsealed"] as const) {
      assert.deepEqual(await ask(`make ${size} ${sealed}`), { sent: size });
      const got = native.recvFds(hostFd, 4);
      assert.ok(got, "the fd arrived before the line that announces it");
      assert.equal(got.bytes.toString(), "made");
      assert.equal(got.fds.length, 1);
      const fd = got.fds[0]!;
      if (sealed === "unsealed") {
        assert.throws(() => allocator.importFd(fd, size), {
          code: "ERR_PYISOLATE_PROTOCOL",
          message: /not a memfd sealed against shrinking \(seals 0x0\)/,
        });
        assert.throws(() => native.fstatSize(fd), { code: "EBADF" }, "importFd closed the refused fd");
        continue;
      }
      const segment = allocator.importFd(fd, size);
      assert.equal(segment.kind, "memfd");
      assert.deepEqual(new Uint8Array(segment.buffer), pattern(size));
      segment.release();
    }
  });

  test("a received fd that is smaller than declared, or not a file, is refused and closed", async () => {
    await ask("make 100 sealed");
    const got = native.recvFds(hostFd, 4);
    assert.ok(got);
    assert.throws(() => allocator.importFd(got.fds[0]!, 101), {
      code: "ERR_PYISOLATE_PROTOCOL",
      message: /holds 100 bytes, less than the 101/,
    });
    assert.throws(() => native.fstatSize(got.fds[0]!), { code: "EBADF" }, "importFd closed the fd");
    const [a, b] = native.socketPair();
    assert.throws(() => allocator.importFd(a, 0), { code: "ERR_PYISOLATE_PROTOCOL", message: /not a regular file/ });
    native.closeFd(b);
  });

  test("timing: fd round trip host -> child -> host", async (t) => {
    const segment = allocator.allocate(4096);
    const rounds = 200;
    const start = process.hrtime.bigint();
    for (let i = 0; i < rounds; i++) {
      assert.equal(native.sendFds(hostFd, new Uint8Array([i & 0xff]), [segment.fd]), 1);
      assert.equal(await ask("echo"), "ok");
      const got = native.recvFds(hostFd, 4);
      assert.equal(got?.fds.length, 1);
      native.closeFd(got!.fds[0]!);
    }
    const perRound = Number(process.hrtime.bigint() - start) / 1e3 / rounds;
    t.diagnostic(
      `fd round trip (sendmsg + stdin line, child recv_fds/send_fds + stdout line, recvmsg): ${perRound.toFixed(1)} us`,
    );
    segment.release();
  });
});
