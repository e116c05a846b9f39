// Local-path dependencies (issue 9): a folder or archive inside the extension's own folder, or one the host's code
// allows, installs from pyisolate.yaml under bwrap, Landlock and unsandboxed; anything else is a ConfigError naming it.

import assert from "node:assert/strict";
import { cpSync, existsSync, readdirSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { planLocalDependencies, withStage, type LocalDependencyRules } from "../src/env/install/local-deps.js";
import { localTargetPath, parseLocalRequirement, withTarget } from "../src/env/local-requirement.js";
import { ConfigError, type ExtensionOptions } from "../src/index.js";
import { PathPins } from "../src/sandbox/pin-set.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import type { SandboxCapabilities } from "../src/sandbox/types.js";
import { fixture, makeManager } from "./helpers.js";
import { SANDBOX_MODES, unavailableMode } from "./sandbox-modes.js";
import { scratch } from "./trust-config-helpers.js";

const root = scratch("compat-yaml-local-");
const manager = makeManager({ venvRoot: path.join(root.dir, "venvs") });
/** A setuptools project outside every extension folder: only the host's code may name it. */
const outside = path.join(root.dir, "outside", "yamldemo");
let caps: SandboxCapabilities;

before(async () => {
  caps = await detectSandbox();
  cpSync(path.join(fixture("compat_yaml_vendored"), "vendor", "yamldemo"), outside, { recursive: true });
});
after(async () => {
  await manager.close();
  root.remove();
});

/** A fresh copy of the vendored pack (an unsandboxed setuptools build writes into the folder it builds). */
function pack(as: string, yaml?: string): string {
  const dir = path.join(root.dir, as);
  cpSync(fixture("compat_yaml_vendored"), dir, { recursive: true });
  if (yaml !== undefined) writeFileSync(path.join(dir, "pyisolate.yaml"), yaml);
  return dir;
}

const NODES = { extensionClass: "pyisolate:SealedNodeExtension" } as const;

/** Runs the pack's node, which imports the installed package. */
async function answer(options: ExtensionOptions): Promise<[string, string]> {
  const ext = await manager.load({ ...NODES, ...options });
  try {
    return (await ext.call("execute_node", ["CompatVendoredAnswer"])) as [string, string];
  } finally {
    await ext.stop();
  }
}

describe("local requirements, parsed", () => {
  it("are told apart from index projects and remote URLs, and keep their name and markers when rewritten", () => {
    const cases: Array<[string, string | undefined]> = [
      ["numpy==2.0", undefined],
      ["torch[cuda]>=2; python_version >= '3.10'", undefined],
      ["pkg @ https://x.org/pkg.whl", undefined],
      ["git+https://x.org/r.git", undefined],
      ["pkg @ file:///srv/pkg", "pkg @ file:///real/pkg"],
      ["pkg[a,b] @ file:///srv/pkg ; os_name == 'posix'", "pkg[a,b] @ file:///real/pkg ; os_name == 'posix'"],
      ["./vendor/pkg", "/real/pkg"],
      ["../up", "/real/pkg"],
      ["/abs/pkg-1.0-py3-none-any.whl", "/real/pkg"],
      ["pkg-1.0.tar.gz", "/real/pkg"],
      ["file:///srv/pkg", "/real/pkg"],
    ];
    for (const [requirement, rewritten] of cases) {
      const local = parseLocalRequirement(requirement);
      assert.equal(local && withTarget(local, "/real/pkg"), rewritten, requirement);
    }
    assert.equal(
      localTargetPath(parseLocalRequirement("./vendor/../../x")!, "/ext"),
      "/x",
      "`..` is resolved, so the check sees where it leads",
    );
    assert.equal(
      localTargetPath(parseLocalRequirement("~/pkg")!, "/ext"),
      undefined,
      "a home-relative path names no path here",
    );
    assert.equal(localTargetPath(parseLocalRequirement("pkg @ file://otherhost/pkg")!, "/ext"), undefined);
  });

  it("copy folders inside the sandbox before the installer runs, and only when there is one", () => {
    const argv = ["/usr/bin/uv", "pip", "install", "--", "/tmp/pyisolate-local/0/pkg"];
    assert.deepEqual(withStage("/usr/bin/python3", [], argv), argv);
    const staged = withStage("/usr/bin/python3", [["/ext/vendor/pkg", "/tmp/pyisolate-local/0/pkg"]], argv);
    assert.deepEqual(staged.slice(0, 3), ["/usr/bin/python3", "-I", "-c"]);
    assert.deepEqual(staged.slice(4), ["/ext/vendor/pkg", "/tmp/pyisolate-local/0/pkg", "--", ...argv]);
  });
});

describe("the install's check of a local dependency from the file", () => {
  it("pins the real path the file check handed on: a link swapped in since, or a path outside, is refused", () => {
    const dir = pack("swap");
    const vendored = path.join(dir, "vendor", "yamldemo");
    const host = { home: "/nonexistent-home", tmp: "/tmp" };
    const rules: LocalDependencyRules = { trusted: [], extensionDir: dir };
    const plan = (deps: string[], r = rules): ReturnType<typeof planLocalDependencies> => {
      const pins = new PathPins();
      try {
        return planLocalDependencies(deps, pins, "/tmp", host, r);
      } finally {
        pins.close();
      }
    };
    assert.deepEqual(plan([vendored]).binds, [vendored], "control: as checked, it is bound");
    assert.throws(
      () => plan([outside]),
      (e: unknown) =>
        e instanceof ConfigError && e.key === "dependencies" && /outside the extension folder/.test(e.message),
    );
    // Between the read of the file and the install, the vendored folder becomes a link to a host folder.
    renameSync(vendored, `${vendored}.moved`);
    symlinkSync(outside, vendored);
    assert.throws(
      () => plan([vendored]),
      (e: unknown) => e instanceof ConfigError && e.key === "dependencies",
      "a swapped-in link is refused",
    );
    // The host's code may name a path through a link: its own dependencies are resolved, not judged.
    assert.deepEqual(plan([vendored], { ...rules, trusted: [vendored] }).binds, [outside]);
  });
});

describe("a local folder named by the pack's pyisolate.yaml installs", () => {
  for (const mode of SANDBOX_MODES) {
    it(`under ${mode.label}, from a read-only bind of the folder, leaving the folder as it was`, async (t) => {
      const why = unavailableMode(caps, mode.sandbox);
      if (why) return t.skip(why);
      const dir = pack(`vendored-${mode.tag}`);
      const before = readdirSync(path.join(dir, "vendor", "yamldemo", "src")).sort();
      const [value, file] = await answer({ name: `compat-local-${mode.tag}`, modulePath: dir, sandbox: mode.sandbox });
      assert.equal(value, "from the vendored folder");
      assert.match(file, /site-packages\/yamldemo\/__init__\.py$/, "imported from the venv, not from the pack");
      // Confined, the build ran on a copy: setuptools' egg-info never reached the pack (unconfined it writes there, as upstream's does).
      if (mode.tag !== "none")
        assert.deepEqual(readdirSync(path.join(dir, "vendor", "yamldemo", "src")).sort(), before);
    });
  }
});

/** Every sandbox mode refuses `yaml` with a ConfigError naming dependencies, the file and the dependency; no venv is made. */
async function refusedEverywhere(
  t: { diagnostic: (m: string) => void },
  as: string,
  yaml: string,
  dependency: string,
  plant?: (dir: string) => void,
): Promise<void> {
  const dir = pack(as, yaml);
  plant?.(dir);
  for (const mode of SANDBOX_MODES) {
    const name = `compat-refused-${as}-${mode.tag}`;
    await assert.rejects(manager.load({ ...NODES, name, modulePath: dir, sandbox: mode.sandbox }), (e: unknown) => {
      assert.ok(e instanceof ConfigError, `${mode.label}: ${String(e)}`);
      assert.equal(e.key, "dependencies", e.message);
      assert.equal(e.file, path.join(dir, "pyisolate.yaml"));
      assert.ok(
        e.message.includes(JSON.stringify(dependency)),
        `${mode.label}: the message names the dependency: ${e.message}`,
      );
      t.diagnostic(`${mode.label}: ${e.message}`);
      return true;
    });
    assert.equal(existsSync(path.join(root.dir, "venvs", name)), false, `${mode.label}: no venv was built`);
  }
}

describe("a local dependency the file may not name is a ConfigError naming it, before anything installs", () => {
  it("a folder outside the extension's, by absolute path and as a file: URL", async (t) => {
    await refusedEverywhere(t, "abs", `dependencies: ["${outside}"]\n`, outside);
    await refusedEverywhere(
      t,
      "url",
      `dependencies: ["yamldemo @ file://${outside}"]\n`,
      `yamldemo @ file://${outside}`,
    );
  });

  it("a folder outside reached through `..`", async (t) => {
    await refusedEverywhere(
      t,
      "dotdot",
      "dependencies: [./vendor/../../outside/yamldemo]\n",
      "./vendor/../../outside/yamldemo",
    );
  });

  it("a symlink inside the folder that leads outside, and one that stays inside", async (t) => {
    await refusedEverywhere(t, "link-out", "dependencies: [./linked]\n", "./linked", (dir) =>
      symlinkSync(outside, path.join(dir, "linked")),
    );
    // No symlink at all: even one to the pack's own vendored folder could be swapped for one that leads out.
    await refusedEverywhere(t, "link-in", "dependencies: [./linked]\n", "./linked", (dir) =>
      symlinkSync(path.join(dir, "vendor", "yamldemo"), path.join(dir, "linked")),
    );
  });

  it("the extension's folder itself, and a path that is not there", async (t) => {
    await refusedEverywhere(t, "self", "dependencies: [-e .]\n", ".");
    await refusedEverywhere(t, "missing", "dependencies: [./vendor/nothing]\n", "./vendor/nothing");
  });
});

describe("control: the host's code may name a local path", () => {
  for (const mode of SANDBOX_MODES) {
    it(`under ${mode.label}, the outside folder installs when load({ fileDependencyPaths }) lists it, and from code alone (named or plain)`, async (t) => {
      const why = unavailableMode(caps, mode.sandbox);
      if (why) return t.skip(why);
      const dir = pack(`allowed-${mode.tag}`, `dependencies: ["yamldemo @ file://${outside}"]\n`);
      const [value] = await answer({
        name: `compat-allowed-${mode.tag}`,
        modulePath: dir,
        sandbox: mode.sandbox,
        fileDependencyPaths: [path.dirname(outside)],
      });
      assert.equal(value, "from the vendored folder");
      // The same path given in code needs no allowance (the failing case: `name @ file:///...` from load()).
      const plain = pack(`code-${mode.tag}`, "isolated: true\n");
      const [fromCode] = await answer({
        name: `compat-code-${mode.tag}`,
        modulePath: plain,
        sandbox: mode.sandbox,
        dependencies: [`yamldemo @ file://${outside}`],
      });
      assert.equal(fromCode, "from the vendored folder");
      // And as a plain path, the other form upstream's examples use.
      const [plainPath] = await answer({
        name: `compat-code-plain-${mode.tag}`,
        modulePath: plain,
        sandbox: mode.sandbox,
        dependencies: [outside],
      });
      assert.equal(plainPath, "from the vendored folder");
    });
  }
});
