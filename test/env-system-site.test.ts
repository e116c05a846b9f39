// systemSitePackages: a venv that sees the base interpreter's packages, for real (uv and pip, bwrap and Landlock),
// its place in the fingerprint, how its folders reach the sandbox, and how the option is checked.
// This host's python3 has `uv` in its own site-packages (pip install uv): the probe imports it.

import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import {
  ConfigError,
  createConsoleLogger,
  ExtensionManager,
  type Extension,
  type ProgressEvent,
} from "../src/index.js";
import { fingerprintInputs, type WantedInputs } from "../src/env/check.js";
import { computeFingerprint } from "../src/env/fingerprint.js";
import { resolvePython } from "../src/env/builder.js";
import { toJob } from "../src/env/types.js";
import { readConfigFile } from "../src/config/config-file.js";
import { validateExtensionOptions, validateManagerOptions } from "../src/config/validate.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import { resolvePythonInstall, resolveSystemSitePackages } from "../src/sandbox/host.js";
import { dangerReason } from "../src/sandbox/path-guard.js";
import type { SandboxCapabilities } from "../src/sandbox/types.js";
import { fixtureIndex, tempRoot } from "./fixtures/env/helpers.js";
import { fixture, makeManager } from "./helpers.js";

const PROBE = fixture("shared_probe");
const root = tempRoot("pyisolate-system-site-");
let caps: SandboxCapabilities;
/**
 * The base interpreter's site-packages, which holds `uv` (where the probe must find it); undefined where the base
 * has no `uv` package (Debian's /usr/bin/python3 in the unprivileged run), and the suites that probe it skip.
 */
const baseSite = (await findBaseSite()) ?? "";
const noBaseUv = baseSite
  ? false
  : "the base interpreter has no `uv` package for the probe to find (pip install uv into it)";

async function findBaseSite(): Promise<string | undefined> {
  const python = await resolvePython(undefined);
  try {
    return execFileSync(
      python.path,
      ["-I", "-c", "import os, uv; print(os.path.dirname(os.path.dirname(os.path.realpath(uv.__file__))))"],
      {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
      },
    ).trim();
  } catch {
    return undefined;
  }
}

before(async () => {
  caps = await detectSandbox();
});
after(() => root.remove());

const bwrapSkip = (): string | false =>
  caps.backend === "bwrap" || caps.backend === "bwrap-degraded" ? false : `bwrap cannot run here (model ${caps.model})`;

type Probe = { file?: string; error?: string; dist?: string | null };

function pyvenvFlag(venv: string): string | undefined {
  return /^include-system-site-packages\s*=\s*(\S+)/m.exec(readFileSync(path.join(venv, "pyvenv.cfg"), "utf8"))?.[1];
}

describe("systemSitePackages in the fingerprint", () => {
  const python = { path: "/usr/bin/python3.11", version: "3.11.7" };
  const wanted: WantedInputs = {
    python: undefined,
    dependencies: ["numpy"],
    index: { indexUrl: null, extraIndexUrls: [], findLinks: [] },
    runtimeVersion: "0.1.0",
    systemSitePackages: false,
  };

  it("changes the fingerprint when on, and leaves it as it was (no key at all) when off", () => {
    const off = fingerprintInputs(python, wanted);
    assert.equal(off.systemSitePackages, undefined);
    const { systemSitePackages: _, ...before } = wanted;
    // A venv built before the option existed keeps its fingerprint: no rebuild on upgrade.
    assert.equal(computeFingerprint(off), computeFingerprint(fingerprintInputs(python, before as WantedInputs)));
    const on = fingerprintInputs(python, { ...wanted, systemSitePackages: true });
    assert.equal(on.systemSitePackages, true);
    assert.notEqual(computeFingerprint(on), computeFingerprint(off));
  });

  it("an extension inherits its layer's choice, and cannot turn it off", () => {
    const layer = {
      name: "gpu",
      venvPath: "/v/.shared/gpu",
      sitePackages: "/v/.shared/gpu/lib/python3.11/site-packages",
      pythonVersion: "3.11.7",
      fingerprint: "f".repeat(64),
    };
    const spec = { name: "e", venvRoot: "/v", dependencies: [], runtimeVersion: "0.1.0" };
    assert.equal(toJob(spec).wanted.systemSitePackages, false);
    assert.equal(toJob({ ...spec, sharedRuntime: layer }).wanted.systemSitePackages, false);
    assert.equal(
      toJob({ ...spec, sharedRuntime: { ...layer, systemSitePackages: true } }).wanted.systemSitePackages,
      true,
    );
    assert.equal(toJob({ ...spec, systemSitePackages: true, sharedRuntime: layer }).wanted.systemSitePackages, true);
    assert.throws(
      () => toJob({ ...spec, systemSitePackages: false, sharedRuntime: { ...layer, systemSitePackages: true } }),
      (e: unknown) =>
        e instanceof ConfigError && e.key === "systemSitePackages" && /shared runtime "gpu"/.test(e.message),
    );
  });
});

describe("systemSitePackages as an option", () => {
  it("must be a boolean, in load options, in sharedRuntimes and in the environment spec", () => {
    for (const bad of ["yes", 1, null]) {
      assert.throws(
        () => validateExtensionOptions({ name: "x", modulePath: PROBE, systemSitePackages: bad as never }),
        (e: unknown) =>
          e instanceof ConfigError &&
          e.key === "systemSitePackages" &&
          /systemSitePackages must be true or false/.test(e.message),
      );
    }
    assert.equal(
      validateExtensionOptions({ name: "x", modulePath: PROBE, systemSitePackages: true }).systemSitePackages,
      true,
    );
    assert.throws(
      () =>
        validateManagerOptions({
          venvRoot: "/v",
          sharedRuntimes: { gpu: { dependencies: ["torch"], systemSitePackages: "true" as never } },
        }),
      (e: unknown) => e instanceof ConfigError && e.key === "sharedRuntimes.gpu.systemSitePackages",
    );
    const ok = validateManagerOptions({
      venvRoot: "/v",
      sharedRuntimes: { gpu: { dependencies: ["torch"], systemSitePackages: true } },
    });
    assert.equal(ok.sharedRuntimes!.gpu!.systemSitePackages, true);
    assert.throws(
      () =>
        toJob({
          name: "e",
          venvRoot: "/v",
          dependencies: [],
          runtimeVersion: "0.1.0",
          systemSitePackages: "on" as never,
        }),
      (e: unknown) => e instanceof ConfigError && e.key === "systemSitePackages",
    );
  });

  it("may only be refused by pyisolate.yaml: true there is a ConfigError naming the key and file", () => {
    const ext = path.join(root.dir, "yaml_ext", "yaml_system_site");
    cpSync(PROBE, ext, { recursive: true });
    const yaml = path.join(ext, "pyisolate.yaml");
    writeFileSync(yaml, "systemSitePackages: false\n");
    assert.deepEqual(readConfigFile(ext), { systemSitePackages: false });
    // Widening what the extension sees is the host application's call (issue 7): only load() can say true.
    for (const text of ["systemSitePackages: true\n", "systemSitePackages: 'yes'\n"]) {
      writeFileSync(yaml, text);
      assert.throws(
        () => readConfigFile(ext),
        (e: unknown) =>
          e instanceof ConfigError && e.key === "systemSitePackages" && e.file === yaml && e.message.includes(yaml),
      );
    }
  });
});

describe("the sandbox sees the base interpreter's site-packages", { skip: noBaseUv }, () => {
  it("folders outside the Python install are added; missing, relative and refused ones are not", async () => {
    const prefix = path.join(root.dir, "fake-install");
    const outside = path.join(root.dir, "brew", "lib", "python3.11", "site-packages");
    mkdirSync(outside, { recursive: true });
    mkdirSync(path.join(prefix, "bin"), { recursive: true });
    // Stands in for a base interpreter whose site-packages lie outside its prefix (Homebrew's are under its prefix's lib, not the Cellar's).
    mkdirSync(path.join(prefix, "lib"));
    const lines = [
      outside,
      path.join(root.dir, "missing"),
      "relative/site-packages",
      "/",
      "/etc",
      path.join(prefix, "bin", "..", "lib"),
    ];
    const fake = path.join(prefix, "bin", "python");
    writeFileSync(fake, `#!/bin/sh\nprintf '%s\\n' ${lines.map((l) => `'${l}'`).join(" ")}\n`);
    chmodSync(fake, 0o755);

    const sealed = await resolvePythonInstall({ python: fake, systemSitePackages: false });
    assert.deepEqual(sealed, [prefix], "the recorded interpreter's prefix, and nothing it was asked");

    const all = await resolveSystemSitePackages(fake);
    assert.ok(all.includes(outside), JSON.stringify(all));
    for (const refused of ["/", "/etc", path.join(root.dir, "missing")]) assert.ok(!all.includes(refused), refused);
    const install = await resolvePythonInstall({ python: fake, systemSitePackages: true });
    assert.deepEqual(install, [...sealed, outside], "the folder inside the install is not listed twice");
  });

  it("an interpreter whose site-packages lie outside its install (as Homebrew's do): they import under bwrap and Landlock", async (t) => {
    const python = await resolvePython(undefined);
    const realPrefix = path.dirname(path.dirname(python.path));
    const lib = `python${python.version.split(".").slice(0, 2).join(".")}`;
    // A copy of the interpreter in a prefix of its own: its stdlib entries link to the real one's, its site-packages
    // links to a folder outside the prefix, which holds a marker package.
    const prefix = path.join(root.dir, "brewish", "prefix");
    const outside = path.join(root.dir, "brewish", "site-packages");
    mkdirSync(path.join(prefix, "bin"), { recursive: true });
    mkdirSync(path.join(prefix, "lib", lib), { recursive: true });
    mkdirSync(path.join(outside, "pyisolate_ssp_marker"), { recursive: true });
    writeFileSync(path.join(outside, "pyisolate_ssp_marker", "__init__.py"), "");
    const exe = path.join(prefix, "bin", path.basename(python.path));
    cpSync(python.path, exe);
    for (const entry of readdirSync(path.join(realPrefix, "lib", lib))) {
      if (entry !== "site-packages")
        symlinkSync(path.join(realPrefix, "lib", lib, entry), path.join(prefix, "lib", lib, entry));
    }
    symlinkSync(outside, path.join(prefix, "lib", lib, "site-packages"));
    const site = spawnSync(exe, ["-I", "-c", "import sys, pyisolate_ssp_marker; print(sys.prefix)"], {
      encoding: "utf8",
    });
    if (site.status !== 0 || site.stdout.trim() !== prefix)
      return t.skip(`a copy of ${python.path} does not run as its own install: ${site.stderr.trim()}`);

    // The copy still reads the real install (its stdlib links, and a shared libpython by absolute rpath): granted here by
    // hand. The outside folder is what the option adds.
    const readonlyPaths = dangerReason(realPrefix) ? [] : [realPrefix];
    const backends = [
      ...(bwrapSkip() ? [] : ["bwrap" as const]),
      ...(caps.landlockAbi > 0 ? ["landlock" as const] : []),
    ];
    if (backends.length === 0) return t.skip("neither bwrap nor Landlock works here");
    const m = makeManager({ venvRoot: path.join(root.dir, "venvs-brewish") });
    try {
      for (const backend of backends) {
        const sandbox = { backend, readonlyPaths };
        const on = await m.load({
          name: `brewish-${backend}`,
          modulePath: PROBE,
          python: exe,
          systemSitePackages: true,
          sandbox,
        });
        const seen = (await on.call("probe", ["pyisolate_ssp_marker"])) as Probe;
        assert.ok(seen.file?.startsWith(`${outside}/`), `${backend}: ${JSON.stringify(seen)}`);
        const off = await m.load({ name: `brewish-${backend}-off`, modulePath: PROBE, python: exe, sandbox });
        assert.deepEqual(await off.call("probe", ["pyisolate_ssp_marker"]), { error: "ModuleNotFoundError" });
      }
    } finally {
      await m.close();
    }
  });

  it("for this host's pyenv Python they lie inside the install, which is bound already", async () => {
    const python = await resolvePython(undefined);
    assert.deepEqual(await resolveSystemSitePackages(python.path), [baseSite]);
    const install = await resolvePythonInstall({ python: python.path, systemSitePackages: true });
    assert.ok(
      install.some((dir) => baseSite.startsWith(`${dir}/`)),
      `${baseSite} is not under ${install.join(", ")}`,
    );
  });
});

describe("an extension with systemSitePackages, for real", { timeout: 300_000, skip: noBaseUv }, () => {
  const m = makeManager();
  const loaded: Extension[] = [];
  const load = async (name: string, options: Record<string, unknown> = {}): Promise<Extension> => {
    const ext = await m.load({ name, modulePath: PROBE, ...options });
    loaded.push(ext);
    return ext;
  };
  after(() => m.close());

  /** The base interpreter's `uv` is importable, after the venv's own packages, and the base folder is read-only. */
  async function assertSeesBase(ext: Extension, denied: string): Promise<void> {
    assert.equal(ext.environment.systemSitePackages, true);
    assert.equal(pyvenvFlag(ext.environment.venvPath), "true");
    const seen = (await ext.call("probe", ["uv", "uv"])) as Probe;
    assert.ok(seen.file?.startsWith(`${baseSite}/`), JSON.stringify(seen));
    const sysPath = (await ext.call("sys_path")) as string[];
    const own = sysPath.findIndex((p) => p.startsWith(`${ext.environment.venvPath}/`) && p.endsWith("site-packages"));
    assert.ok(
      own >= 0 && own < sysPath.indexOf(baseSite),
      `the venv's own packages come first: ${JSON.stringify(sysPath)}`,
    );
    const planted = path.join(baseSite, `pyisolate-planted-${ext.name}.pth`);
    try {
      const write = (await ext.call("write", [planted])) as string[];
      assert.equal(write[0], denied, JSON.stringify(write));
    } finally {
      rmSync(planted, { force: true });
    }
  }

  it("under bwrap (the default required mode), with uv: sees the base's packages; without the option it does not", async (t) => {
    const skip = bwrapSkip();
    if (skip) return t.skip(skip);
    const on = await load("system-site-bwrap-on", { systemSitePackages: true, installer: "uv" });
    assert.equal(on.sandbox.backend.startsWith("bwrap"), true);
    assert.equal(on.environment.backend, "uv");
    await assertSeesBase(on, "OSError");
    const off = await load("system-site-bwrap-off", { installer: "uv" });
    assert.equal(off.environment.systemSitePackages, false);
    assert.equal(pyvenvFlag(off.environment.venvPath), "false");
    assert.deepEqual(await off.call("probe", ["uv"]), { error: "ModuleNotFoundError" });
  });

  it("under bwrap, with pip: the install takes a requirement the base already has from there, with no index", async (t) => {
    const skip = bwrapSkip();
    if (skip) return t.skip(skip);
    const empty = path.join(root.dir, "empty-index");
    mkdirSync(empty, { recursive: true });
    const events: ProgressEvent[] = [];
    // A fresh venvRoot: this venv has an install, which must really run.
    const fresh = makeManager({ venvRoot: path.join(root.dir, "venvs-pip") });
    try {
      const ext = await fresh.load({
        name: "system-site-bwrap-pip",
        modulePath: PROBE,
        systemSitePackages: true,
        installer: "pip",
        dependencies: ["uv"],
        indexUrl: `file://${empty}`,
        onProgress: (e: ProgressEvent) => events.push(e),
      });
      assert.equal(ext.environment.backend, "pip");
      assert.equal(ext.environment.reused, false);
      assert.equal(ext.environment.installSandbox?.startsWith("bwrap"), true);
      const lines = events
        .filter((e) => e.line)
        .map((e) => e.line!)
        .join("\n");
      assert.ok(lines.includes(`Requirement already satisfied: uv in ${baseSite}`), lines);
      const [major, minor] = ext.environment.pythonVersion.split(".");
      const own = path.join(ext.environment.venvPath, "lib", `python${major}.${minor}`, "site-packages");
      assert.ok(existsSync(own) && !existsSync(path.join(own, "uv")), "uv was not installed again");
      await assertSeesBase(ext, "OSError");
    } finally {
      await fresh.close();
    }
  });

  it("under Landlock: sees the base's packages, and cannot write there", async (t) => {
    if (caps.landlockAbi < 1) return t.skip("this kernel has no Landlock");
    const ext = await load("system-site-landlock", { systemSitePackages: true, sandbox: { backend: "landlock" } });
    assert.equal(ext.sandbox.backend, "landlock");
    await assertSeesBase(ext, "PermissionError");
    const off = await load("system-site-landlock-off", { sandbox: { backend: "landlock" } });
    assert.deepEqual(await off.call("probe", ["uv"]), { error: "ModuleNotFoundError" });
  });

  it("flipping the option rebuilds the venv; an unchanged one is reused", async () => {
    const name = "system-site-flip";
    const off = await load(name, { sandbox: { mode: "disabled" } });
    assert.deepEqual(await off.call("probe", ["uv"]), { error: "ModuleNotFoundError" });
    await off.stop();
    const on = await load(name, { systemSitePackages: true, sandbox: { mode: "disabled" } });
    assert.equal(on.environment.reused, false);
    assert.notEqual(on.environment.fingerprint, off.environment.fingerprint);
    assert.equal(((await on.call("probe", ["uv"])) as Probe).file?.startsWith(`${baseSite}/`), true);
    await on.stop();
    const again = await load(name, { systemSitePackages: true, sandbox: { mode: "disabled" } });
    assert.equal(again.environment.reused, true);
    assert.equal(again.environment.fingerprint, on.environment.fingerprint);
    await again.stop();
    const back = await load(name, { sandbox: { mode: "disabled" } });
    assert.equal(back.environment.reused, false);
    assert.equal(back.environment.fingerprint, off.environment.fingerprint);
    assert.deepEqual(await back.call("probe", ["uv"]), { error: "ModuleNotFoundError" });
  });

  it("with Debian's system Python: dist-packages under /usr import under bwrap and Landlock", async (t) => {
    const debian = "/usr/bin/python3";
    if (!existsSync("/usr/lib/python3/dist-packages/yaml/__init__.py"))
      return t.skip("no Debian python3 with PyYAML in /usr/lib/python3/dist-packages");
    const backends = [...(bwrapSkip() ? [] : ["bwrap"]), ...(caps.landlockAbi > 0 ? ["landlock"] : [])];
    if (backends.length === 0) return t.skip("neither bwrap nor Landlock works here");
    for (const backend of backends) {
      const ext = await load(`system-site-debian-${backend}`, {
        python: debian,
        systemSitePackages: true,
        sandbox: { backend },
      });
      assert.equal(ext.sandbox.backend.startsWith(backend), true);
      const seen = (await ext.call("probe", ["yaml"])) as Probe;
      assert.ok(seen.file?.startsWith("/usr/lib/python3/dist-packages/"), JSON.stringify(seen));
    }
    const sealed = await load("system-site-debian-off", { python: debian });
    assert.deepEqual(await sealed.call("probe", ["yaml"]), { error: "ModuleNotFoundError" });
  });
});

describe("a shared runtime layer with systemSitePackages", { timeout: 300_000, skip: noBaseUv }, () => {
  it("is seen by the extensions that name it, which cannot turn it off", async () => {
    const index = fixtureIndex(path.join(root.dir, "index"), ["1.0"]);
    const m = new ExtensionManager({
      venvRoot: path.join(root.dir, "venvs-layer"),
      forwardOutput: false,
      logger: createConsoleLogger("silent"),
      sharedRuntimes: {
        base: { dependencies: ["pyisolate-fixture-hello==1.0"], indexUrl: index.indexUrl, systemSitePackages: true },
      },
    });
    try {
      const ext = await m.load({
        name: "layer-user",
        modulePath: PROBE,
        sharedRuntime: "base",
        sandbox: { mode: "disabled" },
      });
      assert.equal(ext.environment.sharedRuntime?.systemSitePackages, true);
      assert.equal(ext.environment.systemSitePackages, true);
      assert.equal(pyvenvFlag(ext.environment.sharedRuntime!.venvPath), "true");
      assert.equal(
        ((await ext.call("probe", ["pyisolate_fixture_hello"])) as Probe).file?.startsWith(
          `${ext.environment.sharedRuntime!.sitePackages}/`,
        ),
        true,
      );
      assert.equal(((await ext.call("probe", ["uv"])) as Probe).file?.startsWith(`${baseSite}/`), true);
      await assert.rejects(
        m.load({
          name: "layer-refuser",
          modulePath: PROBE,
          sharedRuntime: "base",
          systemSitePackages: false,
          sandbox: { mode: "disabled" },
        }),
        (e: unknown) => e instanceof ConfigError && e.key === "systemSitePackages",
      );
    } finally {
      await m.close();
    }
  });
});
