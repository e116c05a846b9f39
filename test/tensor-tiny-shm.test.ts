// Docker's 64 MB /dev/shm, and smaller: tensors still cross, because memfd segments do not live in /dev/shm.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { it } from "node:test";
import { promisify } from "node:util";
import { nativeStatus } from "../src/tensor/native.js";
import { fixture, SHARED_VENV_ROOT, TEST_DIR } from "./helpers.js";
import { NUMPY } from "./tensor-helpers.js";

const exec = promisify(execFile);
const canMount = process.getuid?.() === 0;
const skip = !nativeStatus.available
  ? `native addon unavailable: ${nativeStatus.reason}`
  : !canMount
    ? "mounting a tiny /dev/shm in a private mount namespace needs root"
    : false;

// Runs inside its own mount namespace, over a 64 KiB tmpfs on /dev/shm: 64 MB tensors both ways.
const HOST_SCRIPT = `
  import { statfsSync } from "node:fs";
  import { ExtensionManager, Tensor } from ${JSON.stringify(new URL("../src/index.ts", import.meta.url).href)};
  const shm = statfsSync("/dev/shm");
  const m = new ExtensionManager({ venvRoot: ${JSON.stringify(SHARED_VENV_ROOT)}, forwardOutput: false });
  try {
    const ext = await m.load({ name: "tensor_np", modulePath: ${JSON.stringify(fixture("tensor_ext"))},
      dependencies: ${JSON.stringify(NUMPY)}, sandbox: { mode: "disabled" } });
    const t = Tensor.zeros([4096, 4096], "float32");
    await ext.call("set_first", [t, 42]);
    const made = await ext.call("make", [16 * 1024 * 1024]);
    console.log(JSON.stringify({ shmBytes: shm.blocks * shm.bsize, first: t.at(0, 0), madeBytes: made.nbytes }));
  } finally {
    await m.close();
  }`;

it("64 MB tensors cross both ways with a 64 KiB /dev/shm", { skip }, async () => {
  const { stdout } = await exec(
    "unshare",
    [
      "--mount",
      "--propagation",
      "private",
      "sh",
      "-c",
      'mount -t tmpfs -o size=64k tmpfs /dev/shm && exec "$0" --import tsx --input-type=module -e "$1"',
      process.execPath,
      HOST_SCRIPT,
    ],
    { cwd: TEST_DIR, timeout: 300_000 },
  );
  const report = JSON.parse(stdout.trim().split("\n").pop()!);
  assert.ok(report.shmBytes <= 64 * 1024, `the tiny /dev/shm is in force (${report.shmBytes} bytes)`);
  assert.equal(report.first, 42, "the extension wrote into the host's 64 MB tensor");
  assert.ok(report.madeBytes >= 16 * 1024 * 1024, "a 16M-element array came back");
});
