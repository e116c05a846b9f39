// Without memfd or without the addon, tensors still work: files in a private folder, then heap copies.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readlinkSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import { SegmentAllocator } from "../src/tensor/allocator.js";
import { loadNative, nativeStatus } from "../src/tensor/native.js";
import { Tensor } from "../src/tensor/tensor.js";

const run = promisify(execFile);
const TENSOR_URL = pathToFileURL(join(import.meta.dirname, "..", "src", "tensor", "tensor.ts")).href;
const NATIVE_URL = pathToFileURL(join(import.meta.dirname, "..", "src", "tensor", "native.ts")).href;

/** Runs inside a node process started with PYISOLATE_DISABLE_NATIVE=1; prints what it saw as JSON. */
const PROBE = `
import { Tensor } from ${JSON.stringify(TENSOR_URL)};
import { nativeAvailable, nativeUnavailableReason } from ${JSON.stringify(NATIVE_URL)};
const t = Tensor.from(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
const tt = t.transpose(0, 1);
const z = Tensor.zeros([4], "complex64");
let sharedError = "";
try { Tensor.zeros([1], "float32", { shared: true }); } catch (e) { sharedError = e.message; }
console.log(JSON.stringify({
  nativeAvailable, nativeUnavailableReason, kind: t.segment.kind, shared: t.isShared,
  values: [...tt.toArray()], at: tt.at(2, 1), zeros: z.data.length, sharedError,
}));
`;

describe("fallbacks", () => {
  test("PYISOLATE_DISABLE_NATIVE=1: the package loads and tensors work by copying", async () => {
    const { stdout } = await run(process.execPath, ["--import", "tsx", "--input-type=module", "-e", PROBE], {
      env: { ...process.env, PYISOLATE_DISABLE_NATIVE: "1" },
    });
    assert.deepEqual(JSON.parse(stdout), {
      nativeAvailable: false,
      nativeUnavailableReason: "disabled by PYISOLATE_DISABLE_NATIVE=1",
      kind: "heap",
      shared: false,
      values: [1, 4, 2, 5, 3, 6],
      at: 6,
      zeros: 8,
      sharedError: "shared memory unavailable: disabled by PYISOLATE_DISABLE_NATIVE=1",
    });
  });

  test("loadNative reports why: disabled, missing build", () => {
    assert.deepEqual(loadNative({ PYISOLATE_DISABLE_NATIVE: "1" }), {
      available: false,
      reason: "disabled by PYISOLATE_DISABLE_NATIVE=1",
      path: loadNative({ PYISOLATE_DISABLE_NATIVE: "1" }).path,
    });
    const enabled = loadNative({ PYISOLATE_DISABLE_NATIVE: "0" });
    assert.ok(enabled.available || !/disabled/.test(enabled.reason), "0 does not disable");
    const missing = loadNative({}, "/nonexistent/pyisolate_native.node");
    assert.equal(missing.available, false);
    assert.match(missing.available ? "" : missing.reason, /was not built/);
  });

  test("an allocator without the addon makes heap segments and says so", () => {
    const allocator = new SegmentAllocator({ native: { available: false, reason: "test", path: "" } });
    assert.deepEqual(allocator.mode, { kind: "heap", reason: "copying: native addon unavailable (test)" });
    const t = Tensor.from(new Int8Array([1, -2, 3]), undefined, { allocator });
    assert.equal(t.segment.kind, "heap");
    assert.deepEqual([...t.toArray()], [1, -2, 3]);
    assert.throws(() => allocator.importFd(0, 0), /cannot import a shared segment: test/);
    t.release();
  });

  test(
    "without memfd: unnamed files in a private 0700 folder, mapped (zero-copy)",
    { skip: nativeStatus.available ? false : "native addon unavailable" },
    () => {
      const root = mkdtempSync(join(tmpdir(), "pyisolate-test-root-"));
      const allocator = new SegmentAllocator({ memfd: false, fileRoot: root });
      assert.equal(allocator.mode.kind, "file");
      const t = Tensor.from(new Float64Array([1.5, 2.5]), [2], { allocator });
      assert.equal(t.segment.kind, "file");
      assert.equal(t.isShared, true);
      assert.deepEqual([...t.data], [1.5, 2.5]);
      const target = readlinkSync(`/proc/self/fd/${t.segment.fd}`);
      assert.match(target, / \(deleted\)$/, "the file has no name");
      const folder = dirname(target);
      assert.equal(dirname(folder), root);
      assert.equal(statSync(folder).mode & 0o777, 0o700);
      assert.deepEqual(readdirSync(folder), [], "nothing in the folder can be found by name");
      t.release();
      rmSync(root, { recursive: true, force: true });
    },
  );
});
