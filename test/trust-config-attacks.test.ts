// Hostile pyisolate.yaml files (issue 7, items 1, 2 and 5): each key class is refused before anything of it runs,
// under bwrap, under Landlock and unsandboxed, and the same value given in code (trusted) is shown to take effect.

import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ConfigError, type ExtensionOptions } from "../src/index.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import type { SandboxCapabilities } from "../src/sandbox/types.js";
import { fixtureIndex } from "./fixtures/env/helpers.js";
import { makeManager } from "./helpers.js";
import { copyFixture, SANDBOX_CASES, scratch } from "./trust-config-helpers.js";

const root = scratch("trust-config-attacks-");
const manager = makeManager({ venvRoot: path.join(root.dir, "venvs") });
const HAVE_GCC = spawnSync("gcc", ["--version"]).status === 0;
const WHEEL = "pyisolate_fixture_hello-1.0-py3-none-any.whl";
/** A local index with no projects: installs find the fixture package only through findLinks or a direct reference. */
const EMPTY_INDEX = `file://${path.join(root.dir, "empty", "simple")}`;
const markers = path.join(root.dir, "markers");
const outsideWheels = path.join(root.dir, "outside_wheels");
let caps: SandboxCapabilities;

before(async () => {
  caps = await detectSandbox();
  mkdirSync(markers);
  mkdirSync(path.join(root.dir, "empty", "simple"), { recursive: true });
  const index = fixtureIndex(path.join(root.dir, "index"), ["1.0"]);
  mkdirSync(outsideWheels);
  copyFileSync(path.join(index.wheels, WHEEL), path.join(outsideWheels, WHEEL));
});
after(async () => {
  await manager.close();
  root.remove();
});

/** Loads with each sandbox case and expects a ConfigError naming `key` and the folder's pyisolate.yaml. */
async function refusedEverywhere(
  t: { diagnostic: (m: string) => void },
  options: Omit<ExtensionOptions, "sandbox">,
  key: string,
): Promise<void> {
  const file = path.join(options.modulePath, "pyisolate.yaml");
  for (const c of SANDBOX_CASES) {
    // The refusal comes before detection, so it holds whatever this host can run; the case still says which it asked.
    await assert.rejects(manager.load({ ...options, sandbox: c.sandbox }), (e: unknown) => {
      assert.ok(e instanceof ConfigError, `${c.label}: ${String(e)}`);
      assert.equal(e.key, key, `${c.label}: ${e.message}`);
      assert.equal(e.file, file, `${c.label}: ${e.message}`);
      t.diagnostic(`${c.label}: ${e.message}`);
      return true;
    });
  }
}

function lines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : [];
}

describe(
  "env: LD_PRELOAD from pyisolate.yaml (item 1)",
  { skip: HAVE_GCC ? false : "gcc is not installed: the preload library cannot be built" },
  () => {
    const marker = path.join(markers, "evil.marker");
    let hostile: string;
    let clean: string;
    let library: string;

    before(() => {
      hostile = copyFixture("trust_config_ld_preload", root.dir);
      clean = copyFixture("trust_config_ld_preload", root.dir, "ld_preload_code");
      rmSync(path.join(clean, "pyisolate.yaml"));
      for (const dir of [hostile, clean]) {
        execFileSync("gcc", [
          "-shared",
          "-fPIC",
          "-O2",
          `-DMARKER="${marker}"`,
          "-o",
          path.join(dir, "evil.so"),
          path.join(dir, "evil.c"),
        ]);
      }
      library = path.join(clean, "evil.so");
    });

    it("is a ConfigError naming env.LD_PRELOAD and the file; the library never ran", async (t) => {
      rmSync(marker, { force: true });
      await refusedEverywhere(t, { name: "trust-ld-yaml", modulePath: hostile }, "env.LD_PRELOAD");
      assert.deepEqual(lines(marker), []);
    });

    it("control: the same variable given in code with the sandbox disabled loads the library into the extension", async () => {
      rmSync(marker, { force: true });
      const ext = await manager.load({
        name: "trust-ld-code",
        modulePath: clean,
        sandbox: { mode: "disabled" },
        env: { LD_PRELOAD: library },
      });
      try {
        assert.equal(await ext.call("env", ["LD_PRELOAD"]), library);
        assert.ok(lines(marker).length > 0, "the preload library wrote its marker");
      } finally {
        await ext.stop();
      }
    });

    it("given in code under bwrap it reaches Python inside, never the bwrap binary itself", async (t) => {
      if (caps.backend !== "bwrap") return t.skip(`bwrap cannot run with every namespace here (model ${caps.model})`);
      rmSync(marker, { force: true });
      const ext = await manager.load({
        name: "trust-ld-bwrap",
        modulePath: clean,
        env: { LD_PRELOAD: library },
        sandbox: { mode: "required", backend: "bwrap", writablePaths: [markers] },
      });
      try {
        assert.equal(await ext.call("env", ["LD_PRELOAD"]), library);
      } finally {
        await ext.stop();
      }
      const loaders = lines(marker);
      t.diagnostic(`programs that loaded it: ${[...new Set(loaders)].join(", ")}`);
      assert.ok(loaders.length > 0, "the guest's interpreter loaded it inside the sandbox");
      assert.ok(
        loaders.every((exe) => !/bwrap/.test(path.basename(exe))),
        `bwrap loaded the library: ${loaders.join(", ")}`,
      );
    });
  },
);

describe("python: ./fakepy from pyisolate.yaml (item 2)", () => {
  let hostile: string;
  const marker = (): string => path.join(hostile, "fakepy.marker");
  before(() => {
    hostile = copyFixture("trust_config_fakepy", root.dir);
  });

  it("is a ConfigError naming python and the file; the host never ran it", async (t) => {
    rmSync(marker(), { force: true });
    await refusedEverywhere(t, { name: "trust-fakepy-yaml", modulePath: hostile }, "python");
    assert.equal(existsSync(marker()), false, "the host ran the extension's fakepy");
  });

  it("control: the same path given in code is run by the host to probe it", async () => {
    rmSync(marker(), { force: true });
    const clean = copyFixture("trust_config_probe", root.dir, "fakepy_code");
    const ext = await manager.load({
      name: "trust-fakepy-code",
      modulePath: clean,
      python: path.join(hostile, "fakepy"),
      sandbox: { mode: "disabled" },
    });
    await ext.stop();
    assert.ok(existsSync(marker()), "the code's interpreter path was run");
  });
});

describe("findLinks and dependencies naming host paths (item 5, the yaml half)", () => {
  const index = { indexUrl: EMPTY_INDEX };

  it("findLinks outside the folder (../outside_wheels) is a ConfigError naming findLinks; no install ran", async (t) => {
    const hostile = copyFixture("trust_config_findlinks", root.dir);
    await refusedEverywhere(t, { name: "trust-fl-outside", modulePath: hostile, ...index }, "findLinks");
    assert.equal(existsSync(path.join(root.dir, "venvs", "trust-fl-outside")), false);
  });

  it("findLinks through a symlink inside the folder that points outside is refused the same way", async (t) => {
    const hostile = copyFixture("trust_config_findlinks", root.dir, "findlinks_symlink");
    symlinkSync(outsideWheels, path.join(hostile, "wheels"));
    writeFileSync(
      path.join(hostile, "pyisolate.yaml"),
      "dependencies: [pyisolate-fixture-hello]\nfindLinks: [wheels]\n",
    );
    await refusedEverywhere(t, { name: "trust-fl-symlink", modulePath: hostile, ...index }, "findLinks");
    assert.equal(existsSync(path.join(root.dir, "venvs", "trust-fl-symlink")), false);
  });

  it("a file: dependency outside the folder is a ConfigError naming dependencies; no install ran", async (t) => {
    const hostile = copyFixture("trust_config_findlinks", root.dir, "file_dependency");
    writeFileSync(
      path.join(hostile, "pyisolate.yaml"),
      `dependencies: ["pyisolate-fixture-hello @ file://${path.join(outsideWheels, WHEEL)}"]\n`,
    );
    await refusedEverywhere(t, { name: "trust-file-dep", modulePath: hostile, ...index }, "dependencies");
    assert.equal(existsSync(path.join(root.dir, "venvs", "trust-file-dep")), false);
  });

  it("control: the same outside folder (through the symlink) given in code is what the install uses", async () => {
    const clean = copyFixture("trust_config_probe", root.dir, "findlinks_code");
    symlinkSync(outsideWheels, path.join(clean, "wheels"));
    const sandbox = caps.backend === "none" ? { mode: "disabled" as const } : undefined;
    const ext = await manager.load({
      name: "trust-fl-code",
      modulePath: clean,
      dependencies: ["pyisolate-fixture-hello"],
      findLinks: [path.join(clean, "wheels")],
      ...index,
      sandbox,
    });
    try {
      assert.equal(await ext.call("installed"), "1.0");
    } finally {
      await ext.stop();
    }
  });

  it("control: the same file: dependency given in code installs the outside wheel", async () => {
    const clean = copyFixture("trust_config_probe", root.dir, "file_dependency_code");
    const dependency = `pyisolate-fixture-hello @ file://${path.join(outsideWheels, WHEEL)}`;
    const ext = await manager.load({
      name: "trust-file-dep-code",
      modulePath: clean,
      dependencies: [dependency],
      ...index,
      sandbox: { mode: "disabled" },
    });
    try {
      assert.equal(await ext.call("installed"), "1.0");
    } finally {
      await ext.stop();
    }
  });
});

describe("what the file may still say", () => {
  it("a wheel folder inside the extension and a tuning variable take effect, installed in the sandbox", async (t) => {
    const dir = copyFixture("trust_config_probe", root.dir, "narrow_yaml");
    mkdirSync(path.join(dir, "wheels"));
    copyFileSync(path.join(outsideWheels, WHEEL), path.join(dir, "wheels", WHEEL));
    writeFileSync(
      path.join(dir, "pyisolate.yaml"),
      "dependencies: [pyisolate-fixture-hello]\nfindLinks: [wheels]\nenv: {OMP_NUM_THREADS: '3'}\npython: '3'\n",
    );
    if (caps.backend === "none") t.diagnostic("no sandbox backend on this host: installing unsandboxed");
    const sandbox = caps.backend === "none" ? { mode: "disabled" as const } : undefined;
    const ext = await manager.load({ name: "trust-narrow", modulePath: dir, indexUrl: EMPTY_INDEX, sandbox });
    try {
      assert.equal(await ext.call("installed"), "1.0");
      assert.equal(await ext.call("env", ["OMP_NUM_THREADS"]), "3");
    } finally {
      await ext.stop();
    }
  });
});
