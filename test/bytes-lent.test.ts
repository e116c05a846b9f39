// Bytes an extension lends from its pool of memfds: the host's copy out of them (never a mapping), what it refuses,
// the addon's kept memory for the next copies and its trim, the `lent` field of `$bytes`, and the numbers handed back.

import assert from "node:assert/strict";
import { closeSync, mkdtempSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { describe, it } from "node:test";
import { ProtocolError } from "../src/errors.js";
import { COPY_OUT_MIN, F_SEAL_GROW, F_SEAL_SEAL, F_SEAL_SHRINK, readLentMemfd } from "../src/rpc/bytes-fd.js";
import { Codec } from "../src/rpc/codec.js";
import { LentReturns } from "../src/rpc/lent-returns.js";
import { nativeStatus, type NativeAddon } from "../src/tensor/native.js";

const MiB = 1024 * 1024;
const NO_ADDON = nativeStatus.available ? undefined : `the native addon is unavailable (${nativeStatus.reason})`;
const addon = (): NativeAddon => (nativeStatus.available ? nativeStatus.addon : (undefined as never));

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** A memfd as the guest's pool makes them: `data` at offset 0 in a file of `capacity`, sealed against resizing. */
function lentMemfd(data: Uint8Array, capacity = data.byteLength, seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) {
  const native = addon();
  const fd = native.memfdCreate("lent-test", capacity, true);
  writeSync(fd, data, 0, data.byteLength, 0);
  if (seals !== 0) native.addSeals!(fd, seals);
  return fd;
}

function pattern(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (i * 13 + seed) & 0xff;
  return out;
}

// First in the file: a copy an earlier test made could be collected, and its memory kept, at any moment of this one.
describe("the addon's kept copy memory", () => {
  it("keeps the memory of collected copies for the next ones, and trimCopies frees it", async (t) => {
    if (NO_ADDON) return t.skip(NO_ADDON);
    const native = addon();
    if (native.copyOut === undefined || native.trimCopies === undefined) return t.skip("an addon without copyOut");
    assert.equal(native.trimCopies(0), 0, "first in this file: no earlier copy is kept");
    const fd = lentMemfd(pattern(4 * MiB, 4));
    try {
      let copy: ArrayBuffer | undefined = native.copyOut(fd, 4 * MiB);
      assert.equal(new Uint8Array(copy)[4 * MiB - 1], pattern(4 * MiB, 4)[4 * MiB - 1]);
      copy = undefined;
      let kept = 0;
      // V8 frees a collected buffer's memory on a helper thread after the collection: polled, up to 5 s.
      for (let i = 0; i < 500 && kept === 0; i++) {
        gc();
        await sleep(10);
        kept = native.trimCopies(60_000); // frees nothing kept for less than a minute: how much is kept
      }
      assert.equal(kept, 4 * MiB, "the collected copy's memory is kept");
      const again = new Uint8Array(native.copyOut(fd, 4 * MiB));
      assert.deepEqual(again.subarray(0, 64), pattern(4 * MiB, 4).subarray(0, 64));
      assert.equal(native.trimCopies(60_000), 0, "the next copy of that size took it");
      assert.equal(native.trimCopies(0), 0);
    } finally {
      closeSync(fd);
    }
  });
});

describe("copying out a lent memfd", () => {
  for (const size of [64 * 1024, COPY_OUT_MIN, 3 * MiB + 5]) {
    it(`copies ${size} bytes; writing into the memfd afterwards changes nothing the host holds`, (t) => {
      if (NO_ADDON) return t.skip(NO_ADDON);
      const data = pattern(size, 1);
      const fd = lentMemfd(data, size + 4096);
      try {
        const copy = readLentMemfd(fd, size, addon());
        assert.deepEqual(copy, data);
        writeSync(fd, new Uint8Array(size).fill(0xee), 0, size, 0);
        assert.deepEqual(copy, data, "a copy, not a mapping");
      } finally {
        closeSync(fd);
      }
    });
  }

  it("refuses a socket, a memfd not sealed against shrinking, and one shorter than declared, with a ProtocolError", (t) => {
    if (NO_ADDON) return t.skip(NO_ADDON);
    const [r, w] = addon().socketPair("stream");
    const dir = mkdtempSync(join(tmpdir(), "bytes-lent-"));
    const unsealed = addon().tmpfileCreate(dir, 4096); // a plain file: no seals, or none it can carry
    rmSync(dir, { recursive: true, force: true });
    const short = lentMemfd(pattern(4096, 3));
    try {
      const refused = (fd: number, size: number, message: RegExp) =>
        assert.throws(
          () => readLentMemfd(fd, size, addon()),
          (error: Error) => error instanceof ProtocolError && message.test(error.message),
        );
      refused(r, 16, /^(received bytes fd is unusable|lent bytes fd is not a memfd sealed against shrinking)/);
      refused(
        unsealed,
        4096,
        /^lent bytes fd is not a memfd sealed against shrinking \((seals 0x1|a file that cannot)/,
      );
      refused(short, 8192, /^lent bytes fd holds 4096 bytes, less than the 8192 declared/);
    } finally {
      for (const fd of [r, w, unsealed, short]) closeSync(fd);
    }
  });
});

describe("the lent field of $bytes", () => {
  const payload = (lent: unknown) => ({ $bytes: { fd: 0, size: 6, lent } });

  it("copies the memfd and hands its number to returnLent; refuses lent where the peer takes none", (t) => {
    if (NO_ADDON) return t.skip(NO_ADDON);
    const fd = lentMemfd(new TextEncoder().encode("lent!!"), 4096);
    try {
      const returned: number[] = [];
      const path = { threshold: 1, maxBytes: MiB, native: addon() };
      const codec = new Codec({ bytesFd: { ...path, returnLent: (n) => returned.push(n) } });
      const value = codec.decode(payload(7), [], [fd]) as Uint8Array;
      assert.equal(Buffer.from(value).toString(), "lent!!");
      assert.deepEqual(returned, [7]);
      assert.throws(
        () => new Codec({ bytesFd: path }).decode(payload(7), [], [fd]),
        (error: Error) => error instanceof ProtocolError && /^malformed \$bytes/.test(error.message),
      );
    } finally {
      closeSync(fd);
    }
  });

  for (const bad of [0, -1, 2 ** 31, 1.5, "3", null]) {
    it(`refuses lent ${JSON.stringify(bad)}: a pooled memfd's number is a positive 31-bit integer`, (t) => {
      if (NO_ADDON) return t.skip(NO_ADDON);
      const fd = lentMemfd(new TextEncoder().encode("lent!!"), 4096);
      try {
        const codec = new Codec({
          bytesFd: { threshold: 1, maxBytes: MiB, native: addon(), returnLent: () => assert.fail("not returned") },
        });
        assert.throws(
          () => codec.decode(payload(bad), [], [fd]),
          (error: Error) => error instanceof ProtocolError && /^malformed \$bytes .*"lent"\?/.test(error.message),
        );
      } finally {
        closeSync(fd);
      }
    });
  }
});

describe("LentReturns", () => {
  it("sends the numbers read in one task together, once that task is done", async () => {
    const sent: number[][] = [];
    const returns = new LentReturns((numbers) => sent.push(numbers));
    returns.add(3);
    returns.add(4);
    assert.deepEqual(sent, [], "nothing before the task ends");
    await Promise.resolve();
    assert.deepEqual(sent, [[3, 4]]);
    returns.add(5);
    await Promise.resolve();
    assert.deepEqual(sent, [[3, 4], [5]]);
  });
});
