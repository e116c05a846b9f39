// CUDA tensors through the Node host and real extensions (GPU only): IPC handles forwarded, counted and freed.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { liveCudaExports, type Extension, type ExtensionOptions } from "../src/index.js";
import { findExecutable } from "../src/sandbox/host.js";
import { CudaTensor } from "../src/tensor/cuda.js";
import { Tensor } from "../src/tensor/tensor.js";
import { fixture, makeManager, waitFor } from "./helpers.js";

const noGpu = existsSync("/dev/nvidia0") ? false : "no GPU visible (/dev/nvidia0 is missing): CUDA IPC needs one";

const CUDA_PYTHON = process.env.PYISOLATE_TEST_CUDA_PYTHON ?? "python3";

/** Where torch lives for `python` (its site folder, symlinks resolved): the sandbox must let the extension read it. */
function torchSite(python: string): string {
  const script = "import os, torch; print(os.path.dirname(os.path.dirname(os.path.realpath(torch.__file__))))";
  return execFileSync(python, ["-c", script], { encoding: "utf8" }).trim();
}

/**
 * A CUDA build of torch cannot be installed here (no network on GPU machines, a CPU wheel in CI): the GPU tests use
 * the torch of a system Python, PYISOLATE_TEST_CUDA_PYTHON (default python3), through `systemSitePackages`, and
 * grant its folder read-only (it may be linked in from elsewhere by a .pth file). The extensions that share CUDA
 * tensors run under Landlock (CUDA IPC handles do not cross the PID namespaces bwrap makes: docs/tensors.md), or
 * unsandboxed where Landlock is missing; PYISOLATE_TEST_CUDA_SANDBOX=disabled tells a sandbox fault from a CUDA one.
 */
function cudaOptions(
  ipc: boolean,
  backend: "landlock" | "bwrap" = "landlock",
): Omit<ExtensionOptions, "name" | "modulePath"> {
  const mode = process.env.PYISOLATE_TEST_CUDA_SANDBOX === "disabled" ? ("disabled" as const) : ("preferred" as const);
  return {
    python: CUDA_PYTHON,
    systemSitePackages: true,
    dependencies: [],
    env: ipc ? { PYISOLATE_ENABLE_CUDA_IPC: "1" } : undefined,
    sandbox: { mode, backend, gpu: true, readonlyPaths: [torchSite(CUDA_PYTHON)] },
  };
}

describe("CUDA tensors", { skip: noGpu, timeout: 600_000 }, () => {
  const manager = makeManager();
  let a: Extension;
  let b: Extension;
  let c: Extension;

  before(async () => {
    const loaded = await Promise.all(
      ["cuda_a", "cuda_b", "cuda_c"].map((name) =>
        manager.load({ name, modulePath: fixture("tensor_ext"), ...cudaOptions(true) }),
      ),
    );
    [a, b, c] = loaded as [Extension, Extension, Extension];
  });
  after(() => manager.close());

  it("with PYISOLATE_ENABLE_CUDA_IPC=1 a CUDA tensor crosses as an IPC handle the host forwards untouched", async () => {
    const handle = await a.call("make_cuda", [4, true]);
    assert.ok(handle instanceof CudaTensor);
    assert.match(handle.producer, /^cuda_a \(pid \d+\)$/);
    assert.equal(await b.call("set_first", [handle, 5]), 5);
    assert.equal(await a.call("held_first"), 5, "B wrote into A's GPU memory");
    handle.release();
    await a.call("drop");
  });

  it("forwarded to two consumers it lives until the host and both let go, and then the producer frees it", async () => {
    const baseline = (await a.call("cuda_allocated")) as number;
    const exports = (await a.call("cuda_exported")) as number; // a CudaTensor of an earlier test may await GC
    const t = (await a.call("make_cuda", [1 << 22, false])) as CudaTensor; // 16 MiB, held by the export alone
    await b.call("hold", [t]);
    await c.call("hold", [t]);
    t.release();
    assert.equal(await a.call("cuda_exported"), exports + 1);
    await b.call("drop");
    assert.equal(await c.call("held_first"), 0, "the second consumer still reads it after the first let go");
    assert.equal(await a.call("cuda_exported"), exports + 1);
    await c.call("drop");
    await waitFor(async () => (await a.call("cuda_exported")) === exports, 10_000, "the producer to be told");
    assert.equal(await a.call("cuda_allocated"), baseline, "the 16 MiB are freed");
    assert.equal(liveCudaExports().length, exports);
  });

  it("a consumer sends it on with the producer's handle; back at the producer it is its own memory", async () => {
    const t = (await a.call("make_cuda", [8, true])) as CudaTensor;
    const fromB = (await b.call("echo", [t])) as CudaTensor;
    assert.ok(fromB instanceof CudaTensor);
    assert.equal(fromB.producer, t.producer);
    assert.equal(await c.call("set_first", [fromB, 9]), 9);
    assert.equal(await a.call("held_first"), 9);
    assert.equal(await a.call("set_first", [fromB, 4]), 4, "rebuilt over the producer's own storage");
    assert.equal(await a.call("held_first"), 4);
    await a.call("drop");
  });

  it("when its producer stops, a CUDA tensor is released and sending it is a clear error", async () => {
    const d = await manager.load({ name: "cuda_d", modulePath: fixture("tensor_ext"), ...cudaOptions(true) });
    const t = (await d.call("make_cuda", [4, true])) as CudaTensor;
    await d.stop();
    assert.equal(t.released, true);
    await assert.rejects(b.call("hold", [t]), /has stopped/);
  });

  it("without the variable a CUDA tensor is copied to host memory and back onto the GPU", async () => {
    const ext = await manager.load({ name: "cuda_copy", modulePath: fixture("tensor_ext"), ...cudaOptions(false) });
    const t = (await ext.call("make_cuda", [4, false])) as Tensor;
    assert.ok(t instanceof Tensor);
    assert.equal(t.device, "cuda:0");
    assert.deepEqual(((await ext.call("info", [t])) as { device: string }).device, "cuda:0");
  });

  it("between two bwrap sandboxes a CUDA tensor either opens or fails with the PID-namespace explanation, never a crash", async (t) => {
    if (!(await findExecutable("bwrap"))) return t.skip("bwrap is not on PATH here");
    const [p, q] = await Promise.all(
      ["cuda_bwrap_p", "cuda_bwrap_q"].map((name) =>
        manager.load({ name, modulePath: fixture("tensor_ext"), ...cudaOptions(true, "bwrap") }),
      ),
    );
    const handle = (await p!.call("make_cuda", [4, true])) as CudaTensor;
    const outcome = await q!.call("set_first", [handle, 6]).then(
      (v) => ["ok", v],
      (e: Error) => ["error", e.message],
    );
    t.diagnostic(`bwrap to bwrap: ${JSON.stringify(outcome)}`);
    if (outcome[0] === "ok") assert.equal(await p!.call("held_first"), 6);
    else assert.match(outcome[1] as string, /another PID namespace/);
    assert.ok(await q!.call("pid"), "the consumer still serves calls");
    handle.release();
  });
});
