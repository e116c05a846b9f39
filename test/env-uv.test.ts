// Environment builder with uv: relocatable venvs, real installs from a local index; skipped (with the reason) without uv.

import assert from "node:assert/strict";
import { readFileSync, statSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ensureEnvironment, findUv, resolvePython, type EnvironmentSpec } from "../src/env/builder.js";
import {
  buildConcurrently,
  failedInstallKeepsPrevious,
  fixtureIndex,
  HELLO,
  leftovers,
  py,
  recorder,
  run,
  tempRoot,
  withoutUv,
} from "./fixtures/env/helpers.js";

const uv = await findUv();
const skip = uv ? false : "uv is not on PATH (install it with `python3 -m pip install uv`; CI does)";
const root = tempRoot("pyisolate-env-uv-");
let base: Omit<EnvironmentSpec, "name" | "dependencies">;

before(async () => {
  const index = fixtureIndex(path.join(root.dir, "index"), ["1.0", "2.0"]);
  // A path, not the default: the pip case below hides uv's folder, which (with pyenv) also changes python3 on PATH.
  const python = await resolvePython(undefined);
  base = {
    venvRoot: path.join(root.dir, "venvs"),
    python: python.path,
    indexUrl: index.indexUrl,
    runtimeVersion: "0.1.0-test",
  };
});
after(() => root.remove());

describe("uv backend", { skip }, () => {
  it("findUv reports the uv it found, and none on a PATH without it", async () => {
    assert.match(uv!.version, /^\d+\.\d+\.\d+/);
    assert.equal(await findUv(withoutUv()), undefined);
  });

  it("auto picks uv; the venv is relocatable and its console script runs after the swap", async () => {
    const rec = recorder();
    const e = await ensureEnvironment({
      ...base,
      name: "hello",
      dependencies: ["pyisolate-fixture-hello==1.0"],
      onProgress: rec.onProgress,
    });
    assert.equal(e.backend, "uv");
    assert.equal(e.reused, false);
    assert.deepEqual(rec.stages(), ["resolve-python", "check", "create-venv", "install", "swap", "done"]);
    assert.ok(
      rec.events.some((ev) => ev.stage === "install" && ev.line?.includes("+ pyisolate-fixture-hello==1.0")),
      "uv's own lines are streamed",
    );
    assert.equal(py(e.pythonPath, HELLO), "1.0");
    assert.equal(py(e.pythonPath, "import sys; print(sys.prefix)"), e.venvPath);
    assert.equal(run(path.join(e.venvPath, "bin", "pyisolate-fixture-hello")), `1.0 ${e.venvPath}`);
    assert.match(readFileSync(path.join(e.venvPath, "pyvenv.cfg"), "utf8"), /relocatable = true/);
    assert.deepEqual(leftovers(base.venvRoot), []);
  });

  it("reuses an unchanged venv without touching it, and a venv built by uv is valid for the pip path too", async () => {
    const spec = { ...base, name: "hello", dependencies: ["pyisolate-fixture-hello==1.0"] };
    const first = await ensureEnvironment(spec);
    // Reuse must not run an installer: the venv and its site-packages keep their inode and change time.
    const stamp = (): string =>
      [first.venvPath, path.join(first.venvPath, "pyvenv.cfg")]
        .map((p) => {
          const s = statSync(p);
          return `${s.ino}:${s.ctimeMs}`;
        })
        .join(",");
    const before = stamp();
    const again = await ensureEnvironment(spec);
    assert.equal(again.reused, true);
    assert.equal(again.fingerprint, first.fingerprint);
    assert.equal(stamp(), before, "the reused venv was not rebuilt or rewritten");
    const viaPip = await ensureEnvironment({ ...spec, installer: "pip", env: withoutUv() });
    assert.equal(viaPip.reused, true);
    assert.equal(viaPip.fingerprint, first.fingerprint);
    assert.equal(viaPip.backend, "uv", "a reused venv reports the backend that built it");
  });

  it("rebuilds when the dependencies change", async () => {
    const old = await ensureEnvironment({ ...base, name: "hello", dependencies: ["pyisolate-fixture-hello==1.0"] });
    const e = await ensureEnvironment({ ...base, name: "hello", dependencies: ["pyisolate-fixture-hello==2.0"] });
    assert.equal(e.reused, false);
    assert.notEqual(e.fingerprint, old.fingerprint);
    assert.equal(run(path.join(e.venvPath, "bin", "pyisolate-fixture-hello")), `2.0 ${e.venvPath}`);
  });

  it("a failed install throws uv's own error and leaves the previous venv working", async () => {
    const err = await failedInstallKeepsPrevious(base);
    assert.match(err.message, /this-package-does-not-exist-pyisolate was not found in the package registry/);
    assert.match(
      err.command!.join(" "),
      /uv pip install --python \S+ --index-url \S+ -- this-package-does-not-exist-pyisolate==1\.0/,
    );
  });

  it("concurrent calls build once", async () => {
    await buildConcurrently({ ...base, name: "twice", dependencies: ["pyisolate-fixture-hello==1.0"] });
  });
});
