// Real installs inside the install sandbox: pip with local indexes and its config, uv with find-links, the modes, run time.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { SandboxUnavailableError } from "../src/errors.js";
import { ensureEnvironment, findUv, resolvePython, type EnvironmentSpec } from "../src/env/builder.js";
import { buildBwrapArgs } from "../src/sandbox/bwrap-policy.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import { readSystemLinks, resolvePythonInstall } from "../src/sandbox/host.js";
import { DEFAULT_SANDBOX_POLICY } from "../src/sandbox/types.js";
import { fixtureIndex, HELLO, leftovers, py, recorder, run, tempRoot } from "./fixtures/env/helpers.js";

const caps = await detectSandbox();
const bwrapOk = caps.bwrap !== undefined && (caps.backend === "bwrap" || caps.backend === "bwrap-degraded");
const skip = bwrapOk
  ? false
  : `bwrap cannot run here (model ${caps.model}): ${caps.gaps.map((g) => g.problem).join("; ")}`;
const uv = await findUv();
const root = tempRoot("pyisolate-env-sbx-");
let base: Omit<EnvironmentSpec, "name" | "dependencies">;
let links = "";
let indexDir = "";

before(async () => {
  const index = fixtureIndex(path.join(root.dir, "index"), ["1.0"]);
  indexDir = path.join(root.dir, "index");
  // 2.0 exists only in a find-links folder: installing it proves the folder was visible inside.
  links = fixtureIndex(path.join(root.dir, "links"), ["2.0"]).wheels;
  const python = await resolvePython(undefined);
  // Caches of unsandboxed runs stay in the test's folder, not in the host's ~/.cache.
  const env = {
    ...process.env,
    PIP_CACHE_DIR: path.join(root.dir, "host-cache", "pip"),
    UV_CACHE_DIR: path.join(root.dir, "host-cache", "uv"),
  };
  base = {
    venvRoot: path.join(root.dir, "venvs"),
    python: python.path,
    indexUrl: index.indexUrl,
    runtimeVersion: "0.1.0-test",
    env,
  };
});
after(() => root.remove());

describe("install sandbox: real installs", { skip }, () => {
  it("pip installs from a local index inside bwrap, into the venv and a per-environment cache", async (t) => {
    const rec = recorder();
    const e = await ensureEnvironment({
      ...base,
      name: "pip-hello",
      installer: "pip",
      dependencies: ["pyisolate-fixture-hello==1.0"],
      onProgress: rec.onProgress,
    });
    assert.equal(e.installSandbox, caps.backend);
    assert.ok(
      rec.events.some((ev) => ev.stage === "install" && ev.message.startsWith(`install sandbox: ${caps.backend}`)),
      "the sandbox is announced",
    );
    assert.ok(rec.events.some((ev) => ev.line?.includes("Successfully installed pyisolate-fixture-hello-1.0")));
    assert.equal(py(e.pythonPath, HELLO), "1.0");
    assert.equal(run(path.join(e.venvPath, "bin", "pyisolate-fixture-hello")), `1.0 ${e.venvPath}`);
    assert.ok(
      existsSync(path.join(base.venvRoot, ".cache", "pip-hello", "pip")),
      "pip's cache is the environment's own",
    );
    assert.deepEqual(leftovers(base.venvRoot), []);

    // The overhead, reported and not asserted (tests do not time things; a loaded CI machine made 1.5 s a coin toss):
    // the same build unconfined and confined, both of which must succeed (detection is cached, as in a host).
    const time = async (mode: "disabled" | "required", i: number): Promise<number> => {
      const start = performance.now();
      await ensureEnvironment({
        ...base,
        name: `pip-time-${mode}-${i}`,
        installer: "pip",
        dependencies: ["pyisolate-fixture-hello==1.0"],
        sandbox: { mode },
      });
      return performance.now() - start;
    };
    const off: number[] = [];
    const on: number[] = [];
    for (let i = 0; i < 3; i++) {
      off.push(await time("disabled", i));
      on.push(await time("required", i));
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[1]!;
    t.diagnostic(
      `pip build, median of 3: unconfined ${median(off).toFixed(0)} ms, in ${caps.backend} ${median(on).toFixed(0)} ms`,
    );
  });

  it("pip reads the user's pip.conf inside the sandbox (moved into the private HOME) and the local index it names", async () => {
    const home = path.join(root.dir, "fake-home");
    mkdirSync(path.join(home, ".config", "pip"), { recursive: true });
    writeFileSync(
      path.join(home, ".config", "pip", "pip.conf"),
      `[global]\nindex-url = file://${indexDir}/simple\nfind-links = ${links}\n`,
    );
    // PIP_* variables would win over the file: leave them out, so that the file alone decides.
    const env = Object.fromEntries(Object.entries({ ...base.env, HOME: home }).filter(([k]) => !k.startsWith("PIP_")));
    // No index option in the spec: only the config file says where the packages are.
    const e = await ensureEnvironment({
      ...base,
      indexUrl: undefined,
      env,
      name: "pip-conf",
      installer: "pip",
      dependencies: ["pyisolate-fixture-hello==2.0"],
    });
    assert.equal(e.installSandbox, caps.backend);
    assert.equal(py(e.pythonPath, HELLO), "2.0");
  });

  it("this host's own pip config (global and user files, local indexes under /opt) works inside the sandbox", async (t) => {
    const pkg = "/opt/pypi/simple/aiofiles";
    if (!existsSync(pkg))
      return t.skip(`${pkg} does not exist: this host's pip config names no local index to test with`);
    const config = execFileSync("python3", ["-m", "pip", "config", "list"], { encoding: "utf8", env: process.env });
    if (!config.includes("/opt/pypi"))
      return t.skip(`the pip config this user sees does not name /opt/pypi:\n${config}`);
    const rec = recorder();
    const e = await ensureEnvironment({
      ...base,
      indexUrl: undefined,
      env: process.env,
      name: "pip-host-conf",
      installer: "pip",
      dependencies: ["aiofiles"],
      onProgress: rec.onProgress,
    });
    assert.ok(
      rec.events.some((ev) => ev.line?.includes("/opt/pypi/files/aiofiles")),
      "installed from the local index the config names",
    );
    assert.equal(py(e.pythonPath, "import aiofiles; print('ok')"), "ok");
  });

  it(
    "uv installs from a local find-links folder inside bwrap, with no network at all",
    { skip: uv ? false : "uv is not on PATH" },
    async () => {
      const rec = recorder();
      const e = await ensureEnvironment({
        ...base,
        name: "uv-links",
        installer: "uv",
        findLinks: [links],
        dependencies: ["pyisolate-fixture-hello==2.0"],
        sandbox: { mode: "required", network: false },
        onProgress: rec.onProgress,
      });
      assert.equal(e.backend, "uv");
      assert.equal(e.installSandbox, caps.backend);
      assert.ok(rec.events.some((ev) => ev.line?.includes("+ pyisolate-fixture-hello==2.0")));
      assert.equal(py(e.pythonPath, HELLO), "2.0");
      assert.equal(run(path.join(e.venvPath, "bin", "pyisolate-fixture-hello")), `2.0 ${e.venvPath}`);
      assert.ok(
        existsSync(path.join(base.venvRoot, ".cache", "uv-links", "uv")),
        "uv's cache is the environment's own",
      );
    },
  );

  it("at run time the sandboxed build works under the launch policy, and its venv is read-only there", async () => {
    const e = await ensureEnvironment({
      ...base,
      name: "pip-hello",
      installer: "pip",
      dependencies: ["pyisolate-fixture-hello==1.0"],
    });
    assert.equal(e.reused, true);
    const ext = path.join(root.dir, "ext");
    mkdirSync(ext, { recursive: true });
    const args = buildBwrapArgs(
      DEFAULT_SANDBOX_POLICY,
      {
        pythonInstall: await resolvePythonInstall({ python: e.basePython, systemSitePackages: false }),
        venv: e.venvPath,
        extensionDir: ext,
        runtimeDir: ext,
        systemLinks: await readSystemLinks(),
      },
      caps.namespaces,
    );
    const code = `${HELLO}\ntry:\n    open(${JSON.stringify(path.join(e.venvPath, "planted.py"))}, "w")\nexcept OSError as err:\n    print(type(err).__name__, err.errno)`;
    const out = execFileSync(caps.bwrap!.path, [...args, "--", e.pythonPath, "-c", code], { encoding: "utf8" })
      .trim()
      .split("\n");
    assert.equal(out[0], "1.0");
    assert.match(out[1]!, /^OSError (30|13)$/, "EROFS (or EACCES): the venv cannot be changed from inside");
  });

  it("the sandbox mode is not part of the fingerprint: a venv built confined is reused unconfined", async () => {
    const spec = {
      ...base,
      name: "pip-hello",
      installer: "pip" as const,
      dependencies: ["pyisolate-fixture-hello==1.0"],
    };
    const a = await ensureEnvironment({ ...spec, sandbox: { mode: "disabled" } });
    const b = await ensureEnvironment({ ...spec, sandbox: { mode: "preferred" } });
    assert.equal(a.reused && b.reused, true);
    assert.equal(a.installSandbox, caps.backend, "the state records how it was built");
  });
});

describe("install sandbox: when neither bwrap nor Landlock can run", () => {
  const missing = { mode: "required" as const, bwrapPath: "/nonexistent/bwrap" };
  // Detection asks the kernel for Landlock through python3 on PATH: without one, this host offers neither backend
  // (the Landlock fallback itself is tested in env-sandbox-landlock.test.ts).
  const noLandlock = (): NodeJS.ProcessEnv => ({ ...base.env, PATH: "/nonexistent-bin" });

  it("required fails before installing, with the reason and the remedy; nothing is left behind", async () => {
    const venvRoot = path.join(root.dir, "venvs-none");
    await assert.rejects(
      ensureEnvironment({
        ...base,
        env: noLandlock(),
        venvRoot,
        name: "req",
        installer: "pip",
        dependencies: ["pyisolate-fixture-hello==1.0"],
        sandbox: missing,
      }),
      (err: SandboxUnavailableError) => {
        assert.ok(err instanceof SandboxUnavailableError, String(err));
        assert.equal(err.code, "ERR_PYISOLATE_SANDBOX");
        assert.equal(err.model, "bwrap-missing");
        assert.ok(err.remedy.length > 0);
        assert.match(err.message, /installing dependencies needs bubblewrap or Landlock/);
        return true;
      },
    );
    assert.ok(!existsSync(path.join(venvRoot, "req")));
    assert.deepEqual(leftovers(venvRoot), []);
  });

  it("preferred warns through a progress event and installs unconfined", async () => {
    const rec = recorder();
    const e = await ensureEnvironment({
      ...base,
      env: noLandlock(),
      venvRoot: path.join(root.dir, "venvs-none"),
      name: "pref",
      installer: "pip",
      dependencies: ["pyisolate-fixture-hello==1.0"],
      sandbox: { ...missing, mode: "preferred" },
      onProgress: rec.onProgress,
    });
    const warnings = rec.events.filter((ev) => ev.warning);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!.message, /WITHOUT a sandbox/);
    assert.equal(e.installSandbox, "none");
    assert.equal(py(e.pythonPath, HELLO), "1.0");
  });
});
