// Fuzz of `$bytes` by fd at the host's codec with real descriptors (a sealed memfd, a dup of it, a socket): every
// payload decodes to bytes or a ProtocolError, nothing else is thrown, and no descriptor is left open.

import assert from "node:assert/strict";
import { readlinkSync } from "node:fs";
import { describe, it } from "node:test";
import fc from "fast-check";
import { ProtocolError } from "../src/errors.js";
import { F_SEAL_SEAL, F_SEAL_WRITE } from "../src/rpc/bytes-fd.js";
import { Codec } from "../src/rpc/codec.js";
import { nativeStatus } from "../src/tensor/native.js";
import { fuzzSettings } from "./resilience-fuzz-arbitraries.js";

const skip = nativeStatus.available ? false : `native addon unavailable: ${nativeStatus.reason}`;
/**
 * What fd number `fd` names now ("/memfd:fuzz (deleted)", "socket:[inode]"), or undefined when it is closed. Checked
 * per fd, not by counting /proc/self/fd: the runtime's own threads open and close files meanwhile.
 */
const fdTarget = (fd: number): string | undefined => {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
};

describe("fuzz: bytes by fd at the host's codec", { skip }, () => {
  it("decodes any $bytes payload over real fds to bytes or a ProtocolError and closes every fd", () => {
    if (!nativeStatus.available) return;
    const native = nativeStatus.addon;
    const codec = new Codec({ bytesFd: { threshold: 1, maxBytes: 1 << 20, native } });
    const payload = fc.oneof(
      fc.record({ fd: fc.integer({ min: 0, max: 2 }), size: fc.integer({ min: 0, max: 4096 }) }),
      fc.record(
        {
          fd: fc.oneof(fc.integer({ min: -2, max: 4 }), fc.constant("0"), fc.constant(null), fc.double()),
          size: fc.oneof(
            fc.integer({ min: -1, max: 8192 }),
            fc.constant(2 ** 40),
            fc.constant(1 << 20),
            fc.double(),
            fc.constant("1"),
          ),
        },
        { requiredKeys: [] },
      ),
    );
    const extra = fc.option(fc.constantFrom("more", "a", "fd2"), { nil: undefined });
    const seen = { decoded: 0, refused: 0 };
    fc.assert(
      fc.property(payload, extra, fc.integer({ min: 0, max: 2 }), (p, key, first) => {
        const sealed = native.memfdCreate("fuzz", 4096, true);
        native.addSeals!(sealed, F_SEAL_WRITE | F_SEAL_SEAL); // immutable, as the host accepts
        const again = native.dupFd(sealed); // the same file under a second index (two values may name it)
        const [socketFd, childFd] = native.socketPair("stream"); // not a memfd: refused
        native.closeFd(childFd);
        const fds = [sealed, again, socketFd];
        const order = [...fds.slice(first), ...fds.slice(0, first)];
        const value = { $bytes: key === undefined ? p : { ...p, [key]: 1 } };
        const targets = fds.map(fdTarget);
        try {
          const got = codec.decode(value, [], order, (fd) => native.closeFd(fd));
          assert.ok(got instanceof Uint8Array);
          seen.decoded++;
        } catch (err) {
          assert.ok(err instanceof ProtocolError, `untyped failure: ${String(err)}`);
          seen.refused++;
        }
        fds.forEach((fd, i) => assert.notEqual(fdTarget(fd), targets[i], `fd ${fd} (${targets[i]}) was left open`));
      }),
      fuzzSettings(),
    );
    assert.ok(seen.decoded > 0 && seen.refused > 0, JSON.stringify(seen));
  });
});
