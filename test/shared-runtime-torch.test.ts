// One real torch for two extensions: a shared runtime layer built once (pip, the local CPU wheel), a tensor passed
// from one extension to the other through the host, and what it saves (printed as diagnostics).

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { after, describe, it } from "node:test";
import { createConsoleLogger, ExtensionManager, type Extension, type Tensor } from "../src/index.js";
import { fixture, SHARED_VENV_ROOT } from "./helpers.js";

const TORCH = "torch==2.13.0";

/** The find-links folders pip is told about by the environment (this repository's CI has the CPU wheel in /opt/wheels). */
function localTorchWheel(): string | undefined {
  const dirs = [...(process.env.PIP_FIND_LINKS ?? "").split(/\s+/), "/opt/wheels"].filter(
    (d) => d.startsWith("/") && existsSync(d),
  );
  for (const dir of dirs) {
    const wheel = readdirSync(dir).find((f) => f.startsWith("torch-2.13.0") && f.endsWith(".whl"));
    if (wheel) return path.join(dir, wheel);
  }
  return undefined;
}

function du(dir: string): number {
  return Number(execFileSync("du", ["-sk", dir], { encoding: "utf8" }).split("\t")[0]) * 1024;
}

const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const skip = localTorchWheel()
  ? false
  : "no local torch 2.13.0 wheel (PIP_FIND_LINKS, /opt/wheels): no test downloads torch";

describe("a torch layer shared by two extensions", { skip, timeout: 900_000 }, () => {
  const manager = new ExtensionManager({
    venvRoot: SHARED_VENV_ROOT,
    forwardOutput: false,
    logger: createConsoleLogger("silent"),
    sharedRuntimes: { torch: { dependencies: [TORCH], installer: "pip" } },
  });
  after(() => manager.close());
  let layerBuilt = false;
  const load = (name: string): Promise<Extension> =>
    manager.load({
      name,
      modulePath: fixture("shared_probe"),
      sharedRuntime: "torch",
      installer: "pip",
      startTimeoutMs: 600_000,
      onProgress: (e) =>
        (layerBuilt ||= e.stage === "create-venv" && e.message.startsWith('shared runtime "torch": creating')),
    });

  it("both import the layer's torch, and a tensor made by one is doubled by the other", async (t) => {
    let started = performance.now();
    const a = await load("shared_torch_a");
    const firstMs = performance.now() - started;
    started = performance.now();
    const b = await load("shared_torch_b");
    const secondMs = performance.now() - started;
    const layer = a.environment.sharedRuntime!;
    assert.equal(layer.name, "torch");
    const [whereA, whereB] = (await Promise.all([a.call("torch_where"), b.call("torch_where")])) as {
      file: string;
      version: string;
    }[];
    assert.equal(whereA!.file, whereB!.file);
    assert.ok(whereA!.file.startsWith(`${layer.sitePackages}/torch/`), whereA!.file);
    assert.match(whereA!.version, /^2\.13\.0/);

    const made = (await a.call("torch_make", [6])) as Tensor;
    assert.equal(made.framework, "torch");
    const doubled = (await b.call("torch_double", [made])) as Tensor;
    assert.deepEqual([...doubled.toArray()], [0, 2, 4, 6, 8, 10]);

    const layerBytes = du(layer.venvPath);
    const venvBytes = [du(a.environment.venvPath), du(b.environment.venvPath)];
    assert.ok(layerBytes > 100 * 2 ** 20, `the layer holds torch (${mib(layerBytes)})`);
    for (const bytes of venvBytes) assert.ok(bytes < 5 * 2 ** 20, `an extension venv holds no torch (${mib(bytes)})`);
    t.diagnostic(
      `load a (layer ${layerBuilt ? "built" : "reused"}, venv ${a.environment.reused ? "reused" : "built"}): ${firstMs.toFixed(0)} ms; load b: ${secondMs.toFixed(0)} ms`,
    );
    t.diagnostic(`layer ${mib(layerBytes)}; extension venvs ${venvBytes.map(mib).join(", ")}`);

    // Warm start: everything built; load, then the first call that imports torch.
    await b.stop();
    started = performance.now();
    const warm = await load("shared_torch_b");
    const loadedMs = performance.now() - started;
    await warm.call("torch_where");
    t.diagnostic(
      `warm start ${loadedMs.toFixed(0)} ms to ready, ${(performance.now() - started).toFixed(0)} ms to torch imported (sandbox ${warm.sandbox.backend})`,
    );
    assert.equal(warm.environment.reused, true);
  });
});
