// A shared runtime layer, for real with both installers: built once, imported by its users from one place,
// overridden by an extension's own pin, read-only under bwrap and Landlock, invisible to a sealed extension.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import {
  ConfigError,
  createConsoleLogger,
  ExtensionManager,
  type Extension,
  type ManagerOptions,
  type ProgressEvent,
} from "../src/index.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import type { SandboxCapabilities } from "../src/sandbox/types.js";
import { resolvePython } from "../src/env/builder.js";
import { fixtureIndex, tempRoot } from "./fixtures/env/helpers.js";
import { fixture } from "./helpers.js";

const root = tempRoot("pyisolate-shared-");
const HELLO = "pyisolate-fixture-hello";
const PROBE = fixture("shared_probe");
let wheels = "";
let indexUrl = "";
let caps: SandboxCapabilities;

/** A second wheel whose only dependency is the layer's package: an install must take it from the layer. */
function makeDependentWheel(dir: string): void {
  const script = `
import base64, hashlib, sys, zipfile
out = sys.argv[1]
info = "pyisolate_fixture_user-1.0.dist-info"
files = {
  "pyisolate_fixture_user/__init__.py": b"import pyisolate_fixture_hello as hello\\nVERSION = '1.0'\\n",
  info + "/METADATA": b"Metadata-Version: 2.1\\nName: pyisolate-fixture-user\\nVersion: 1.0\\nRequires-Dist: pyisolate-fixture-hello>=1.0\\n",
  info + "/WHEEL": b"Wheel-Version: 1.0\\nGenerator: pyisolate-tests\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
}
def line(p, d):
  h = base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b"=").decode()
  return "%s,sha256=%s,%d" % (p, h, len(d))
files[info + "/RECORD"] = ("\\n".join([line(p, d) for p, d in files.items()] + [info + "/RECORD,,"]) + "\\n").encode()
with zipfile.ZipFile(out + "/pyisolate_fixture_user-1.0-py3-none-any.whl", "w") as z:
  for p, d in files.items(): z.writestr(p, d)
`;
  execFileSync("python3", ["-c", script, dir]);
}

before(async () => {
  const index = fixtureIndex(path.join(root.dir, "index"), ["1.0", "2.0"]);
  wheels = index.wheels;
  indexUrl = index.indexUrl;
  makeDependentWheel(wheels);
  caps = await detectSandbox();
});
after(() => root.remove());

/** Site-packages of a venv (the one lib/python3.X folder). */
function sitePackages(venv: string): string {
  const lib = path.join(venv, "lib");
  return path.join(
    lib,
    readdirSync(lib).find((d) => d.startsWith("python"))!,
    "site-packages",
  );
}

function manager(
  backend: "uv" | "pip",
  venvRoot: string,
  layer = `${HELLO}==1.0`,
  extra: Partial<ManagerOptions> = {},
): ExtensionManager {
  return new ExtensionManager({
    venvRoot,
    installer: backend,
    forwardOutput: false,
    logger: createConsoleLogger("silent"),
    sharedRuntimes: { hello: { dependencies: [layer], indexUrl } },
    ...extra,
  });
}

const bwrapSkip = (): string | false =>
  caps.backend === "bwrap" || caps.backend === "bwrap-degraded" ? false : `bwrap cannot run here (model ${caps.model})`;

for (const backend of ["uv", "pip"] as const) {
  describe(`shared runtime layer, ${backend}`, { timeout: 300_000 }, () => {
    const venvRoot = path.join(root.dir, `venvs-${backend}`);
    const m = manager(backend, venvRoot);
    const loaded: Extension[] = [];
    const load = async (
      name: string,
      options: Record<string, unknown> = {},
      events?: ProgressEvent[],
    ): Promise<Extension> => {
      const ext = await m.load({
        name,
        modulePath: PROBE,
        sharedRuntime: "hello",
        findLinks: [wheels],
        indexUrl,
        sandbox: { mode: "disabled" },
        onProgress: events && ((e) => events.push(e)),
        ...options,
      });
      loaded.push(ext);
      return ext;
    };
    after(() => m.close());

    it("two extensions loaded at once build the layer once and import its package from it", async () => {
      const events: ProgressEvent[] = [];
      const [a, b] = await Promise.all([load("a", {}, events), load("b", {}, events)]);
      const layerBuilds = events.filter(
        (e) => e.stage === "create-venv" && e.message.startsWith('shared runtime "hello": creating'),
      );
      assert.equal(layerBuilds.length, 1, "the layer is built once for both");
      const layer = a!.environment.sharedRuntime!;
      assert.equal(layer.name, "hello");
      assert.equal(layer.venvPath, path.join(venvRoot, ".shared", "hello"));
      assert.deepEqual(b!.environment.sharedRuntime, layer);
      for (const ext of [a!, b!]) {
        const seen = (await ext.call("probe", ["pyisolate_fixture_hello", HELLO])) as {
          version: string;
          file: string;
          dist: string;
        };
        assert.equal(seen.version, "1.0");
        assert.equal(seen.dist, "1.0");
        assert.ok(seen.file.startsWith(`${layer.sitePackages}/`), `${seen.file} is not in the layer`);
        // The venv holds no copy of the package: only a metadata stub that installers read.
        const own = sitePackages(ext.environment.venvPath);
        assert.ok(!existsSync(path.join(own, "pyisolate_fixture_hello")), "the extension's venv has no copy");
        assert.equal(
          readFileSync(path.join(own, "pyisolate_fixture_hello-1.0.dist-info", "INSTALLER"), "utf8").trim(),
          "pyisolate-shared-runtime",
        );
        const sysPath = (await ext.call("sys_path")) as string[];
        assert.ok(
          sysPath.indexOf(layer.sitePackages) > sysPath.findIndex((p) => p.startsWith(ext.environment.venvPath)),
          "the layer comes after the venv's own packages",
        );
      }
      // A second load of an unchanged layer and venv is a reuse, with nothing built.
      await a!.stop();
      const again: ProgressEvent[] = [];
      const a2 = await load("a", {}, again);
      assert.equal(a2.environment.reused, true);
      assert.ok(
        again.every((e) => e.stage !== "create-venv" && e.stage !== "install"),
        JSON.stringify(again.map((e) => e.message)),
      );
    });

    it("an extension's own dependency on the layer's package is satisfied by the layer, directly and through another package", async () => {
      const events: ProgressEvent[] = [];
      const ext = await load("dependent", { dependencies: [`${HELLO}>=1.0`, "pyisolate-fixture-user"] }, events);
      const installed = events
        .filter((e) => e.stage === "install" && e.line)
        .map((e) => e.line!)
        .join("\n");
      assert.match(installed, /pyisolate[-_]fixture[-_]user/i);
      const own = sitePackages(ext.environment.venvPath);
      assert.ok(existsSync(path.join(own, "pyisolate_fixture_user")), "its own package is in its venv");
      assert.ok(
        !existsSync(path.join(own, "pyisolate_fixture_hello")),
        `the layer's package was installed again:\n${installed}`,
      );
      const user = (await ext.call("probe", ["pyisolate_fixture_user"])) as { file: string };
      assert.ok(user.file.startsWith(`${own}/`), JSON.stringify(user));
      const hello = (await ext.call("probe", ["pyisolate_fixture_hello"])) as { file: string };
      assert.ok(hello.file.startsWith(`${ext.environment.sharedRuntime!.sitePackages}/`), JSON.stringify(hello));
    });

    it("an extension's own pin of another version wins over the layer, and leaves the layer as it was", async () => {
      const ext = await load("pinned", { dependencies: [`${HELLO}==2.0`] });
      const seen = (await ext.call("probe", ["pyisolate_fixture_hello", HELLO])) as {
        version: string;
        file: string;
        dist: string;
      };
      assert.deepEqual([seen.version, seen.dist], ["2.0", "2.0"]);
      assert.ok(seen.file.startsWith(`${sitePackages(ext.environment.venvPath)}/`));
      const other = loaded.find((e) => e.name === "b")!;
      assert.equal(((await other.call("probe", ["pyisolate_fixture_hello"])) as { version: string }).version, "1.0");
      assert.ok(
        existsSync(path.join(ext.environment.sharedRuntime!.sitePackages, "pyisolate_fixture_hello-1.0.dist-info")),
      );
    });

    it("a sealed extension in the same manager cannot import the layer's package", async () => {
      const ext = await load("sealed", { sharedRuntime: undefined });
      assert.equal(ext.environment.sharedRuntime, undefined);
      assert.deepEqual(await ext.call("probe", ["pyisolate_fixture_hello"]), { error: "ModuleNotFoundError" });
      assert.ok(
        !readdirSync(sitePackages(ext.environment.venvPath)).some(
          (f) => f.endsWith(".pth") || f.startsWith("pyisolate_fixture"),
        ),
      );
    });
  });
}

describe("shared runtime layer in the sandbox", { timeout: 300_000 }, () => {
  const venvRoot = path.join(root.dir, "venvs-sandbox");
  const m = manager("uv", venvRoot);
  after(() => m.close());
  const load = (name: string, sandbox: Record<string, unknown>, sharedRuntime: string | null = "hello") =>
    m.load({ name, modulePath: PROBE, sharedRuntime, indexUrl, sandbox: { mode: "required", ...sandbox } });

  it("under bwrap: the layer imports, is read-only, and a sealed extension does not even see it", async (t) => {
    const skip = bwrapSkip();
    if (skip) return t.skip(skip);
    const ext = await load("bw", { backend: "bwrap" });
    assert.equal(ext.sandbox.backend.startsWith("bwrap"), true);
    const layer = ext.environment.sharedRuntime!;
    const seen = (await ext.call("probe", ["pyisolate_fixture_hello"])) as { version: string; file: string };
    assert.equal(seen.version, "1.0");
    assert.ok(seen.file.startsWith(`${layer.sitePackages}/`));
    const write = (await ext.call("write", [path.join(layer.sitePackages, "planted.pth")])) as string[];
    assert.equal(write[0], "OSError", JSON.stringify(write));
    assert.match(String(write[1]), /Read-only file system/);
    assert.equal(
      (
        (await ext.call("write", [path.join(layer.sitePackages, "pyisolate_fixture_hello", "__init__.py")])) as string[]
      )[0],
      "OSError",
    );
    assert.ok(!existsSync(path.join(layer.sitePackages, "planted.pth")));

    const sealed = await load("bw_sealed", { backend: "bwrap" }, null);
    assert.deepEqual(await sealed.call("probe", ["pyisolate_fixture_hello"]), { error: "ModuleNotFoundError" });
    assert.equal(((await sealed.call("listdir", [layer.sitePackages])) as string[])[0], "FileNotFoundError");
  });

  it("under Landlock: the layer imports and writing into it is denied", async (t) => {
    if (caps.landlockAbi < 1) return t.skip("this kernel has no Landlock");
    const ext = await load("ll", { backend: "landlock" });
    assert.equal(ext.sandbox.backend, "landlock");
    const layer = ext.environment.sharedRuntime!;
    assert.equal(((await ext.call("probe", ["pyisolate_fixture_hello"])) as { version: string }).version, "1.0");
    const write = (await ext.call("write", [path.join(layer.sitePackages, "planted.pth")])) as string[];
    assert.equal(write[0], "PermissionError", JSON.stringify(write));
    const sealed = await load("ll_sealed", { backend: "landlock" }, null);
    assert.equal(((await sealed.call("listdir", [layer.sitePackages])) as string[])[0], "PermissionError");
  });
});

describe("shared runtime configuration", { timeout: 300_000 }, () => {
  const venvRoot = path.join(root.dir, "venvs-config");

  it("a changed layer is rebuilt, and so are the venvs that use it", async () => {
    const first = manager("uv", venvRoot);
    const one = await first.load({
      name: "user",
      modulePath: PROBE,
      sharedRuntime: "hello",
      sandbox: { mode: "disabled" },
    });
    const before = one.environment;
    await first.close();
    const second = manager("uv", venvRoot, `${HELLO}==2.0`);
    try {
      const two = await second.load({
        name: "user",
        modulePath: PROBE,
        sharedRuntime: "hello",
        sandbox: { mode: "disabled" },
      });
      assert.equal(two.environment.reused, false);
      assert.notEqual(two.environment.fingerprint, before.fingerprint);
      assert.notEqual(two.environment.sharedRuntime!.fingerprint, before.sharedRuntime!.fingerprint);
      assert.equal(((await two.call("probe", ["pyisolate_fixture_hello"])) as { version: string }).version, "2.0");
    } finally {
      await second.close();
    }
  });

  it("pyisolate.yaml may name a layer; code can seal the extension again with null", async () => {
    const dir = path.join(root.dir, "yaml_probe");
    cpSync(PROBE, dir, { recursive: true });
    writeFileSync(path.join(dir, "pyisolate.yaml"), "sharedRuntime: hello\n");
    const m = manager("uv", venvRoot, `${HELLO}==2.0`);
    try {
      const named = await m.load({ name: "yaml_named", modulePath: dir, sandbox: { mode: "disabled" } });
      assert.equal(named.environment.sharedRuntime?.name, "hello");
      const sealed = await m.load({
        name: "yaml_sealed",
        modulePath: dir,
        sharedRuntime: null,
        sandbox: { mode: "disabled" },
      });
      assert.equal(sealed.environment.sharedRuntime, undefined);
      assert.deepEqual(await sealed.call("probe", ["pyisolate_fixture_hello"]), { error: "ModuleNotFoundError" });
    } finally {
      await m.close();
    }
  });

  it("bad options are ConfigErrors that name the key", async () => {
    const bad = (sharedRuntimes: unknown) => () => new ExtensionManager({ venvRoot, sharedRuntimes } as ManagerOptions);
    assert.throws(bad([]), { name: "ConfigError", key: "sharedRuntimes" });
    assert.throws(bad({ "../x": { dependencies: ["six"] } }), { key: "sharedRuntimes.../x" });
    assert.throws(bad({ t: { dependencies: [] } }), { key: "sharedRuntimes.t.dependencies" });
    assert.throws(bad({ t: { dependencies: ["--index-url=http://evil"] } }), { key: "sharedRuntimes.t.dependencies" });
    assert.throws(bad({ t: { dependencies: ["six"], pyhton: "3.11" } }), { key: "sharedRuntimes.t.pyhton" });
    assert.throws(bad({ t: { dependencies: ["six"], backend: "conda" } }), { key: "sharedRuntimes.t.backend" });
    const m = manager("uv", venvRoot);
    try {
      await assert.rejects(
        m.load({ name: "x", modulePath: PROBE, sharedRuntime: "nope", sandbox: { mode: "disabled" } }),
        (e: unknown) => e instanceof ConfigError && e.key === "sharedRuntime" && /"hello"/.test(e.message),
      );
      await assert.rejects(
        m.load({ name: "x", modulePath: PROBE, sharedRuntime: "constructor", sandbox: { mode: "disabled" } }),
        { key: "sharedRuntime" },
      );
      await assert.rejects(m.load({ name: "x", modulePath: PROBE, sharedRuntime: 5 as unknown as string }), {
        key: "sharedRuntime",
      });
    } finally {
      await m.close();
    }
  });

  it("an extension on another Python minor than the layer's is refused, naming sharedRuntime", async (t) => {
    const layerPython = await resolvePython(undefined);
    let other: string | undefined;
    for (const v of ["3.13", "3.12", "3.10", "3.9"]) {
      const found = await resolvePython(v).catch(() => undefined);
      if (found && !found.version.startsWith(layerPython.version.split(".").slice(0, 2).join(".") + ".")) {
        other = v;
        break;
      }
    }
    if (!other) return t.skip("no second Python minor on this host");
    const m = manager("uv", venvRoot, `${HELLO}==2.0`);
    try {
      await assert.rejects(
        m.load({
          name: "minor",
          modulePath: PROBE,
          sharedRuntime: "hello",
          python: other,
          sandbox: { mode: "disabled" },
        }),
        (e: unknown) =>
          e instanceof ConfigError &&
          e.key === "sharedRuntime" &&
          e.message.includes(`built for Python ${layerPython.version}`),
      );
    } finally {
      await m.close();
    }
  });
});
