// Runs inside one container of the matrix: records detection's evidence, then attacks, a 1 GiB tensor round trip,
// each through a real load with the default sandbox options; prints one JSON object as its last line.
//
// Usage (from the project root, in the container): node --import tsx scripts/container-matrix-probe.ts VENV_ROOT

import { ExtensionManager, Tensor, type Extension } from "../src/index.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import { readEvidence } from "../src/sandbox/detect-evidence.js";
import { nativeStatus } from "../src/tensor/native.js";
import { ALL_BLOCKED, plantTargets, ROOT_ONLY, runAttacks, succeeded } from "../test/fixtures/sandbox/attacks.js";

const GIB = 1024 * 1024 * 1024;

const venvRoot = process.argv[2] ?? "/tmp/pyisolate-venvs";
const fixture = (name: string) => new URL(`../test/fixtures/extensions/${name}`, import.meta.url).pathname;
const message = (e: unknown) =>
  (e instanceof Error ? `${e.name}: ${e.message}` : String(e)).split("\n")[0]!.slice(0, 300);

async function attacks(manager: ExtensionManager) {
  const targets = await plantTargets();
  try {
    const ext = await manager.load({
      name: "attack_ext",
      modulePath: fixture("attack_ext"),
      sandbox: { writablePaths: [targets.writable] },
    });
    const out = await runAttacks(ext, targets, fixture("attack_ext"));
    const names = ALL_BLOCKED.filter((n) => process.getuid?.() === 0 || !ROOT_ONLY.includes(n)).filter((n) => n in out);
    const through = names.filter((n) => succeeded(n, out[n]!, targets));
    return {
      backend: ext.sandbox.backend,
      degraded: ext.sandbox.degraded,
      blocked: names.length - through.length,
      total: names.length,
      through,
      writable: out.write_writable?.[0] === "ok",
    };
  } catch (e) {
    return { error: message(e) };
  } finally {
    await targets.cleanup();
  }
}

async function tensor(manager: ExtensionManager) {
  let ext: Extension;
  try {
    ext = await manager.load({
      name: "tensor_ext",
      modulePath: fixture("tensor_ext"),
      dependencies: ["numpy==2.2.6"],
      startTimeoutMs: 600_000,
    });
  } catch (e) {
    return { error: message(e) };
  }
  try {
    // 1 GiB, far over Docker's default 64 MB /dev/shm: segments are memfds, which do not live there.
    const t = Tensor.zeros([GIB / 4], "float32");
    const info = (await ext.call("info", [t])) as { shared: boolean };
    await ext.call("set_first", [t, 42]);
    return {
      backend: ext.sandbox.backend,
      bytes: GIB,
      shared: info.shared,
      hostSawWrite: t.at(0) === 42,
      native: nativeStatus.available,
    };
  } catch (e) {
    return { error: message(e) };
  }
}

const evidence = await readEvidence();
const caps = await detectSandbox();
const manager = new ExtensionManager({ venvRoot, forwardOutput: false });
try {
  const attack = await attacks(manager);
  const tensors = await tensor(manager);
  const { probes, gaps, container, backend, model, namespaces, landlockAbi } = caps;
  console.log(
    JSON.stringify({
      evidence,
      detected: { backend, model, namespaces, landlockAbi, container, gaps, probes },
      attack,
      tensors,
    }),
  );
} finally {
  await manager.close();
}
