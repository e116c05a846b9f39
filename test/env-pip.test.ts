// Environment builder with venv + pip (uv hidden from PATH): real venvs, real installs from a local index.

import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import path from "node:path";
import { once } from "node:events";
import { after, before, describe, it } from "node:test";
import { CallAbortedError, ConfigError } from "../src/errors.js";
import { ensureEnvironment, resolvePython, type EnvironmentSpec } from "../src/env/builder.js";
import { statePath } from "../src/env/fingerprint.js";
import { pipInstaller } from "../src/env/pip.js";
import { buildPath, relocateVenv, swapIn } from "../src/env/swap.js";
import {
  buildConcurrently,
  deadPid,
  failedInstallKeepsPrevious,
  fixtureIndex,
  HELLO,
  leftovers,
  processesMentioning,
  py,
  recorder,
  run,
  tempRoot,
  withoutUv,
} from "./fixtures/env/helpers.js";

const root = tempRoot("pyisolate-env-pip-");
const env = withoutUv();
let base: Omit<EnvironmentSpec, "name" | "dependencies">;
let wheels = "";

before(async () => {
  const index = fixtureIndex(path.join(root.dir, "index"), ["1.0", "2.0", "3.0"]);
  wheels = index.wheels;
  // Resolved with the full PATH: with uv's folder (pyenv's shims) gone, python3 on PATH may be another one.
  const python = await resolvePython(undefined);
  base = {
    venvRoot: path.join(root.dir, "venvs"),
    python: python.path,
    indexUrl: index.indexUrl,
    runtimeVersion: "0.1.0-test",
    env,
  };
});
after(() => root.remove());

describe("pip backend (uv hidden from PATH)", () => {
  it("creates a venv, installs a dependency, and fixes the paths the build folder left in bin/", async () => {
    const rec = recorder();
    const e = await ensureEnvironment({
      ...base,
      name: "hello",
      dependencies: ["pyisolate-fixture-hello==1.0"],
      onProgress: rec.onProgress,
    });
    assert.equal(e.installer, "pip");
    assert.equal(e.reused, false);
    assert.equal(e.venvPath, path.join(base.venvRoot, "hello"));
    assert.equal(e.pythonPath, path.join(e.venvPath, "bin", "python"));
    assert.match(e.fingerprint, /^[0-9a-f]{64}$/);
    assert.deepEqual(rec.stages(), ["resolve-python", "check", "create-venv", "install", "swap", "done"]);
    assert.ok(
      rec.events.some((ev) => ev.stage === "install" && ev.line?.includes("Successfully installed")),
      "pip's own lines are streamed",
    );
    assert.equal(py(e.pythonPath, HELLO), "1.0");
    assert.equal(py(e.pythonPath, "import sys; print(sys.prefix)"), e.venvPath);
    // The console script was written while the venv lived in .build-*: its shebang must now name the final path.
    const script = path.join(e.venvPath, "bin", "pyisolate-fixture-hello");
    assert.equal(readFileSync(script, "utf8").split("\n")[0], `#!${e.venvPath}/bin/python`);
    assert.equal(run(script), `1.0 ${e.venvPath}`);
    assert.doesNotMatch(readFileSync(path.join(e.venvPath, "pyvenv.cfg"), "utf8"), /\.build-/);
    assert.doesNotMatch(readFileSync(path.join(e.venvPath, "bin", "activate"), "utf8"), /\.build-/);
    const state = JSON.parse(readFileSync(statePath(base.venvRoot, "hello"), "utf8"));
    assert.equal(state.fingerprint, e.fingerprint);
    assert.deepEqual(state.inputs.dependencies, ["pyisolate-fixture-hello==1.0"]);
    assert.deepEqual(leftovers(base.venvRoot), []);
  });

  it("reuses an unchanged venv without spawning anything, fast", async () => {
    const spec = { ...base, name: "hello", dependencies: ["pyisolate-fixture-hello==1.0"] };
    const first = await ensureEnvironment(spec);
    const times: number[] = [];
    for (let i = 0; i < 10; i++) {
      const rec = recorder();
      const t = performance.now();
      const e = await ensureEnvironment({ ...spec, onProgress: rec.onProgress });
      times.push(performance.now() - t);
      assert.equal(e.reused, true);
      assert.equal(e.fingerprint, first.fingerprint);
      assert.deepEqual(rec.stages(), ["resolve-python", "check", "done"]);
    }
    const best = Math.min(...times);
    assert.ok(best < 20, `reuse check took ${best.toFixed(2)} ms`);
  });

  it("rebuilds aside when the dependencies change", async () => {
    const old = await ensureEnvironment({ ...base, name: "hello", dependencies: ["pyisolate-fixture-hello==1.0"] });
    const e = await ensureEnvironment({ ...base, name: "hello", dependencies: ["pyisolate-fixture-hello==2.0"] });
    assert.equal(e.reused, false);
    assert.notEqual(e.fingerprint, old.fingerprint);
    assert.equal(py(e.pythonPath, HELLO), "2.0");
    assert.equal(run(path.join(e.venvPath, "bin", "pyisolate-fixture-hello")), `2.0 ${e.venvPath}`);
    assert.deepEqual(leftovers(base.venvRoot), []);
  });

  it("a failed install throws pip's own error and leaves the previous venv as it was", async () => {
    const err = await failedInstallKeepsPrevious(base);
    assert.match(err.message, /No matching distribution found for this-package-does-not-exist-pyisolate==1\.0/);
    assert.match(err.command!.join(" "), / -m pip .*install .*this-package-does-not-exist-pyisolate==1\.0/);
    assert.equal(err.command?.at(-1), "this-package-does-not-exist-pyisolate==1.0");
  });

  it("aborting kills the running install and leaves no build folder", async () => {
    const ac = new AbortController();
    const spec = { ...base, name: "aborted", dependencies: ["pyisolate-fixture-hello==1.0"], signal: ac.signal };
    const err = await ensureEnvironment({
      ...spec,
      onProgress: (ev) => ev.stage === "install" && ev.line && ac.abort(new Error("user cancelled")),
    }).catch((e: unknown) => e);
    assert.ok(err instanceof CallAbortedError, String(err));
    assert.equal((err.cause as Error).message, "user cancelled");
    assert.equal(existsSync(path.join(base.venvRoot, "aborted")), false);
    assert.deepEqual(
      processesMentioning(path.join(base.venvRoot, ".build-aborted-")),
      [],
      "pip and the pip it re-ran for --python are gone",
    );
    assert.deepEqual(leftovers(base.venvRoot), []);
  });

  it("concurrent calls for one venv build it once and both succeed", async () => {
    const { a, b, recs } = await buildConcurrently({
      ...base,
      name: "twice",
      dependencies: ["pyisolate-fixture-hello==3.0"],
    });
    assert.deepEqual([a.reused, b.reused].sort(), [false, true]);
    // Either may win the race to the lock; the other one waits and then finds the venv built.
    const waited = recs.filter((r) => r.stages().includes("lock-wait"));
    assert.equal(waited.length, 1);
    assert.deepEqual(waited[0]!.stages(), ["resolve-python", "check", "lock-wait", "check", "done"]);
    assert.equal(py(a.pythonPath, HELLO), "3.0");
  });

  it("waits for another process that holds the lock", async () => {
    mkdirSync(base.venvRoot, { recursive: true });
    const lock = path.join(base.venvRoot, ".lock-other");
    const child = spawn(
      process.execPath,
      ["--import", "tsx", path.join("test", "fixtures", "env", "hold-lock.ts"), lock],
      {
        stdio: ["pipe", "pipe", "inherit"],
      },
    );
    child.stdout.setEncoding("utf8");
    const exited = once(child, "exit").then(([code]) => `exited with ${code}`);
    assert.equal(await Promise.race([once(child.stdout, "data").then(([d]) => String(d).trim()), exited]), "locked");
    const waits: string[] = [];
    const building = ensureEnvironment({
      ...base,
      name: "other",
      dependencies: [],
      onProgress: (ev) => {
        if (ev.stage !== "lock-wait") return;
        waits.push(ev.message);
        child.stdin.write("release\n"); // let it go only once we are seen waiting
      },
    });
    const e = await building;
    assert.equal(waits.length, 1);
    assert.match(waits[0]!, new RegExp(`process ${child.pid}`));
    assert.equal(e.reused, false);
    assert.equal(await exited, "exited with 0");
    assert.deepEqual(leftovers(base.venvRoot), []);
  });

  it("takes over a stale lock whose owner is dead", async () => {
    const lock = path.join(base.venvRoot, ".lock-stale");
    writeFileSync(lock, JSON.stringify({ pid: deadPid(), hostname: hostname(), acquiredAt: new Date().toISOString() }));
    const rec = recorder();
    const e = await ensureEnvironment({ ...base, name: "stale", dependencies: [], onProgress: rec.onProgress });
    assert.equal(e.reused, false);
    assert.deepEqual(rec.stages(), ["resolve-python", "check", "create-venv", "swap", "done"]);
    assert.deepEqual(leftovers(base.venvRoot), []);
  });

  it("a venv with a removed python link or a corrupt state file is rebuilt", async () => {
    const spec = { ...base, name: "broken", dependencies: [] };
    const first = await ensureEnvironment(spec);
    rmSync(first.pythonPath);
    const fixed = await ensureEnvironment(spec);
    assert.equal(fixed.reused, false);
    assert.equal(fixed.fingerprint, first.fingerprint);
    assert.equal(py(fixed.pythonPath, "import sys; print(sys.prefix)"), fixed.venvPath);
    writeFileSync(statePath(base.venvRoot, "broken"), "{ not json");
    assert.equal((await ensureEnvironment(spec)).reused, false);
    assert.equal((await ensureEnvironment(spec)).reused, true);
  });

  it("builds for another Python version (3.9)", async (t) => {
    const p39 = await resolvePython("3.9").catch(() => undefined);
    if (!p39) return t.skip("no Python 3.9 on this machine");
    const e = await ensureEnvironment({
      ...base,
      python: "3.9",
      name: "py39",
      dependencies: ["pyisolate-fixture-hello==1.0"],
    });
    assert.equal(e.pythonVersion, p39.version);
    assert.equal(py(e.pythonPath, "import sys; print('%d.%d' % sys.version_info[:2])"), "3.9");
    assert.equal(py(e.pythonPath, HELLO), "1.0");
    assert.equal(
      (
        await ensureEnvironment({
          ...base,
          python: "3.9",
          name: "py39",
          dependencies: ["pyisolate-fixture-hello==1.0"],
        })
      ).reused,
      true,
    );
  });

  it("the fallback (pip seeded into the venv) keeps bin/pip working after the swap", async () => {
    const python = await resolvePython(base.python);
    mkdirSync(base.venvRoot, { recursive: true });
    const finalDir = path.join(base.venvRoot, "seeded");
    const tmp = buildPath(base.venvRoot, "seeded");
    const lines: string[] = [];
    const ctx = {
      python,
      venvPath: tmp,
      prompt: "seeded",
      dependencies: ["pyisolate-fixture-hello==1.0"],
      env,
      cwd: base.venvRoot,
      index: { indexUrl: base.indexUrl ?? null, extraIndexUrls: [], findLinks: [] },
      onLine: (l: string) => lines.push(l),
    };
    const backend = pipInstaller({ seedPip: true });
    await backend.createVenv(ctx);
    await backend.install(ctx);
    assert.match(readFileSync(path.join(tmp, "bin", "pip"), "utf8"), new RegExp(`^#!${tmp}/bin/python`));
    const changed = await relocateVenv(tmp, finalDir);
    assert.ok(changed.includes(path.join(tmp, "bin", "pip")), changed.join(", "));
    await swapIn(tmp, finalDir);
    assert.match(
      readFileSync(path.join(finalDir, "bin", "pip"), "utf8"),
      new RegExp(`^#!${finalDir}/bin/python[0-9.]*\n`),
    );
    assert.match(
      execFileSync(path.join(finalDir, "bin", "pip"), ["--version"], { encoding: "utf8" }),
      new RegExp(`from ${finalDir}/lib/`),
    );
    assert.equal(run(path.join(finalDir, "bin", "pyisolate-fixture-hello")), `1.0 ${finalDir}`);
    assert.match(readFileSync(path.join(finalDir, "pyvenv.cfg"), "utf8"), /^home = /m);
    assert.deepEqual(leftovers(base.venvRoot), []);
  });

  it("installs from find-links, and backend uv without uv on PATH is a ConfigError", async () => {
    const e = await ensureEnvironment({
      ...base,
      indexUrl: undefined,
      findLinks: [wheels],
      name: "links",
      dependencies: ["pyisolate-fixture-hello==1.0"],
    });
    assert.equal(py(e.pythonPath, HELLO), "1.0");
    await assert.rejects(
      ensureEnvironment({ ...base, name: "nouv", dependencies: [], installer: "uv" }),
      (err: unknown) => err instanceof ConfigError && err.key === "installer",
    );
  });

  it("rejects a venvRoot that is not a writable folder, and option-like dependencies", async () => {
    const file = path.join(root.dir, "a-file");
    writeFileSync(file, "");
    await assert.rejects(
      ensureEnvironment({ ...base, venvRoot: file, name: "x", dependencies: [] }),
      (err: unknown) =>
        err instanceof ConfigError && err.key === "venvRoot" && /not a writable directory/.test(err.message),
    );
    await assert.rejects(
      ensureEnvironment({ ...base, name: "x", dependencies: ["--index-url=http://evil"] }),
      (err: unknown) => err instanceof ConfigError && err.key === "dependencies",
    );
    await assert.rejects(
      ensureEnvironment({ ...base, venvRoot: "relative/path", name: "x", dependencies: [] }),
      ConfigError,
    );
  });
});
