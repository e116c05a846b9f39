// The host codec's memfd path for bytes, in memory with real memfds: where the threshold sends what, the round trip
// (fd read back into an equal Uint8Array), and the ProtocolErrors a hostile payload gets.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { closeSync, openSync } from "node:fs";
import { describe, it } from "node:test";
import { validateExtensionOptions } from "../src/config/validate.js";
import { ConfigError, ProtocolError } from "../src/errors.js";
import { F_SEAL_SHRINK, type BytesFd } from "../src/rpc/bytes-fd.js";
import { Codec } from "../src/rpc/codec.js";
import { nativeStatus } from "../src/tensor/native.js";
import { fixture } from "./helpers.js";

const skip = nativeStatus.available ? false : `native addon unavailable: ${nativeStatus.reason}`;

function codec(threshold: number, maxBytes = 1 << 30): Codec {
  if (!nativeStatus.available) throw new Error("no addon");
  const path: BytesFd = { threshold, maxBytes, native: nativeStatus.addon };
  return new Codec({ bytesFd: path });
}

/** The receiver's own descriptor of a sent fd, as SCM_RIGHTS would give it. */
const received = (fd: number): number => (nativeStatus.available ? nativeStatus.addon.dupFd(fd) : -1);
const close = (fd: number): void => {
  if (nativeStatus.available) nativeStatus.addon.closeFd(fd);
};

describe("bytes by memfd in the host codec", { skip }, () => {
  it("sends bytes from the threshold on as a sealed memfd and smaller ones as attachments", () => {
    const encoded = codec(4096).encode([new Uint8Array(4095), Buffer.alloc(4096, 7), new ArrayBuffer(5000)]);
    assert.deepEqual(encoded.value, [
      { $bytes: 0 },
      { $bytes: { fd: 0, size: 4096 } },
      { $bytes: { fd: 1, size: 5000 } },
    ]);
    assert.equal(encoded.attachments.length, 1);
    assert.equal(encoded.fds.length, 2);
    const native = nativeStatus.available ? nativeStatus.addon : undefined;
    for (const fd of encoded.fds) assert.ok((native!.getSeals(fd)! & F_SEAL_SHRINK) !== 0, "sealed against shrinking");
    for (const hold of encoded.holds) hold.release();
    for (const fd of encoded.fds) assert.throws(() => native!.fstatSize(fd), /EBADF/, "released once sent: closed");
  });

  it("reads a received memfd back into bytes equal to the ones sent, nested in objects", () => {
    const c = codec(1024);
    const data = randomBytes(3 << 20);
    const encoded = c.encode({ list: [data] });
    const json = JSON.parse(JSON.stringify(encoded.value)) as unknown;
    const decoded = c.decode(json, [], encoded.fds.map(received), close) as { list: Uint8Array[] };
    assert.ok(Buffer.compare(decoded.list[0]!, data) === 0);
    for (const hold of encoded.holds) hold.release();
  });

  it("refuses bytes by fd past maxFrameBytes for the frame, a regular file, and a malformed payload", () => {
    const c = codec(1, 8192);
    const a = c.encode([Buffer.alloc(6000), Buffer.alloc(6000)]);
    assert.throws(
      () => c.decode(a.value, [], a.fds.map(received), close),
      (e: Error) =>
        e instanceof ProtocolError &&
        /^bytes by fd in one frame: 12000 exceeds the limit maxFrameBytes = 8192/.test(e.message),
    );
    for (const hold of a.holds) hold.release();
    const file = openSync(process.execPath, "r");
    try {
      assert.throws(
        () => c.decode({ $bytes: { fd: 0, size: 1 } }, [], [file]),
        /^ProtocolError|received bytes fd is not a memfd sealed against writing, shrinking and growing \(a file that cannot carry seals\)/,
      );
    } finally {
      try {
        closeSync(file);
      } catch {
        // the decode closed it (the codec owns a frame's fds)
      }
    }
    for (const payload of [
      { fd: -1, size: 1 },
      { fd: 0, size: "1" },
      { fd: 0, size: 1, more: true },
    ]) {
      assert.throws(
        () => c.decode({ $bytes: payload }, [], []),
        (e: Error) => e instanceof ProtocolError && /^malformed \$bytes/.test(e.message),
      );
    }
    assert.throws(() => new Codec().decode({ $bytes: { fd: 0, size: 1 } }), /bytes by fd need an fd channel/);
  });
});

describe("the bytesMemfdThreshold option", () => {
  it("takes a positive integer or Infinity and refuses anything else with a ConfigError naming the option", () => {
    const base = { name: "x", modulePath: fixture("bytes_echo") };
    for (const ok of [1, 1 << 20, Infinity, undefined])
      assert.doesNotThrow(() => validateExtensionOptions({ ...base, bytesMemfdThreshold: ok }));
    for (const bad of [0, -1, 1.5, NaN, "1"]) {
      assert.throws(
        () => validateExtensionOptions({ ...base, bytesMemfdThreshold: bad as number }),
        (e: Error) =>
          e instanceof ConfigError &&
          e.key === "bytesMemfdThreshold" &&
          /^bytesMemfdThreshold must be a positive integer/.test(e.message),
      );
    }
  });
});
