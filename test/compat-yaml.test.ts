// The field's pyisolate.yaml (issue 9): the keys pyisolate 0.10 and public ComfyUI packs write are read, mapped or
// noted once; none loosens the sandbox; unknown keys stay errors; and packs in the field's shapes load unchanged.

import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { readConfigFile } from "../src/config/config-file.js";
import type { FileAllowances } from "../src/config/file-policy.js";
import { UPSTREAM_KEYS } from "../src/config/upstream-keys.js";
import { ConfigError, ExtensionManager, type Logger } from "../src/index.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import type { SandboxCapabilities } from "../src/sandbox/types.js";
import { fixtureIndex } from "./fixtures/env/helpers.js";
import { fixture, SHARED_VENV_ROOT, TEST_DIR } from "./helpers.js";
import { SANDBOX_MODES, unavailableMode } from "./sandbox-modes.js";
import { scratch } from "./trust-config-helpers.js";

const root = scratch("compat-yaml-");
const ext = path.join(root.dir, "ext");
const yamlFile = path.join(ext, "pyisolate.yaml");
mkdirSync(path.join(ext, "wheels"), { recursive: true });
writeFileSync(path.join(ext, "__init__.py"), "");
after(() => root.remove());

/** Reads `text` as the folder's pyisolate.yaml; returns the options and the warnings it gave. */
function read(text: string, allow: FileAllowances = {}): { options: Record<string, unknown>; warnings: string[] } {
  writeFileSync(yamlFile, text);
  const warnings: string[] = [];
  const options = readConfigFile(ext, { ...allow, onWarning: (m) => warnings.push(m) }) as Record<string, unknown>;
  for (const w of warnings) assert.ok(w.startsWith(`${yamlFile}: `), `a warning names the file: ${w}`);
  return { options, warnings };
}

function refused(text: string, key: string, message?: RegExp): void {
  assert.throws(
    () => read(text),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.equal(e.key, key, `${text.trim()} -> ${e.message}`);
      assert.equal(e.file, yamlFile);
      assert.ok(e.message.startsWith(yamlFile), e.message);
      if (message) assert.match(e.message, message);
      return true;
    },
  );
}

describe("the pyisolate.yaml files public ComfyUI packs ship", () => {
  // Verbatim, from ComfyUI-IsolationToolkit, ComfyUI-IsolationTest, ComfyUI-PyIsolated and pyisolate's README_COMFYUI.
  const TOOLKIT = "can_isolate: true\nshare_torch: true\ndependencies: []\n";
  const ISOLATION_TEST =
    "can_isolate: true\ncan_sandbox: true\nshare_torch: true\nshare_cuda_ipc: true\ndependencies: []\n";
  const PYISOLATED = "isolated: true\nshare_torch: true\nsandbox: false";
  const README =
    "isolated: true\nshare_torch: true  # Enable zero-copy PyTorch tensor sharing\n\ndependencies:\n  - numpy==2.0.0        # Node specific numpy version\n  - pillow==10.0.0\n  - my-special-lib>=1.5\n";

  it("map onto a host with a torch layer and the GPU given: no warning, the layer and CUDA IPC taken", () => {
    const host: FileAllowances = { sharedRuntimes: ["torch"], gpu: true };
    assert.deepEqual(read(TOOLKIT, host), { options: { sharedRuntime: "torch", dependencies: [] }, warnings: [] });
    assert.deepEqual(read(ISOLATION_TEST, host), {
      options: { sharedRuntime: "torch", dependencies: [], env: { PYISOLATE_ENABLE_CUDA_IPC: "1" } },
      warnings: [],
    });
    assert.deepEqual(read(README, host).options, {
      sharedRuntime: "torch",
      dependencies: ["numpy==2.0.0", "pillow==10.0.0", "my-special-lib>=1.5"],
    });
  });

  it("load on a host without them, with one warning per key that cannot take effect", () => {
    const toolkit = read(TOOLKIT);
    assert.deepEqual(toolkit.options, { dependencies: [] });
    assert.equal(toolkit.warnings.length, 1);
    assert.match(toolkit.warnings[0]!, /share_torch: true: the host has no shared runtime layer named "torch"/);
    const test = read(ISOLATION_TEST);
    assert.deepEqual(test.options, { dependencies: [] });
    assert.deepEqual(
      test.warnings.map((w) => /: (\w+)[: ]/.exec(w.slice(yamlFile.length))?.[1]),
      ["share_torch", "share_cuda_ipc"],
    );
    const pyisolated = read(PYISOLATED);
    assert.deepEqual(pyisolated.options, {});
    assert.equal(pyisolated.warnings.length, 2);
    assert.match(
      pyisolated.warnings[1]!,
      /sandbox: false is ignored: an extension's config file never loosens the host's sandbox/,
    );
  });
});

describe("every key pyisolate 0.10 reads", () => {
  /** A value of the shape upstream writes, per key (the table in src/config/upstream-keys.ts). */
  const SAMPLES: Record<string, string> = {
    isolated: "true",
    can_isolate: "true",
    can_sandbox: "true",
    enabled: "true",
    sandbox: "{writable_paths: [wheels]}",
    sandbox_mode: "required",
    share_torch: "false",
    share_cuda_ipc: "false",
    share_torch_no_deps: "[torchvision]",
    dependencies: "[numpy]",
    extra_index_urls: "['https://download.pytorch.org/whl/cpu']",
    find_links: "[wheels]",
    package_manager: "uv",
    conda_dependencies: "[boltons]",
    conda_channels: "[conda-forge]",
    conda_platforms: "[linux-64]",
    conda_python: "'3.11'",
    cuda_wheels: "{index_url: 'https://example.org/cuda/', packages: [flash-attn]}",
    execution_model: "sealed_worker",
    sealed_host_ro_paths: "[/opt/models]",
    apis: "[PromptServer]",
    name: "ext",
    module: "ext",
    module_path: "/srv/ext",
    version: "1.0.0",
  };

  it("is accepted in the shape upstream writes it (and the table and this list name the same keys)", () => {
    assert.deepEqual(Object.keys(SAMPLES).sort(), Object.keys(UPSTREAM_KEYS).sort());
    for (const [key, value] of Object.entries(SAMPLES))
      assert.doesNotThrow(() => read(`${key}: ${value}\n`, { name: "ext" }), key);
  });

  it("maps to our option where there is one", () => {
    const cases: Array<[string, Record<string, unknown>]> = [
      ["dependencies: [-e ./wheels, numpy]", { dependencies: [path.join(ext, "wheels"), "numpy"] }],
      ["extra_index_urls: ['https://x.org/simple']", { extraIndexUrls: ["https://x.org/simple"] }],
      ["find_links: [wheels]", { findLinks: [path.join(ext, "wheels")] }],
      ["package_manager: pip", { installer: "pip" }],
      ["dependencies: [numpy]\nconda_dependencies: [boltons]", { dependencies: ["numpy", "boltons"] }],
      [
        "cuda_wheels: {index_urls: ['https://x.org/cu128/'], packages: [x]}",
        { extraIndexUrls: ["https://x.org/cu128/"] },
      ],
      ["apis: [PromptServer]", { services: ["PromptServer"] }],
      [
        "sandbox: {writable_paths: [wheels]}\nsandbox_mode: required",
        { sandbox: { writablePaths: ["wheels"], mode: "required" } },
      ],
      [
        "extra_index_urls: ['https://a.org/simple']\nextraIndexUrls: ['https://b.org/simple']",
        { extraIndexUrls: ["https://b.org/simple", "https://a.org/simple"] },
      ],
    ];
    for (const [text, options] of cases) assert.deepEqual(read(`${text}\n`).options, options, text);
  });

  it("that loosens the sandbox, or asks for less isolation, warns and changes nothing", () => {
    for (const text of [
      "sandbox: false",
      "sandbox_mode: disabled",
      "sandbox: {network: true}",
      "can_sandbox: false",
      "isolated: false",
      "can_isolate: false",
      "execution_model: host-coupled",
      "sealed_host_ro_paths: [/etc]",
      "sandbox: {readonly_paths: {/etc: /etc}}",
    ]) {
      const { options, warnings } = read(`${text}\n`);
      assert.equal(warnings.length, 1, text);
      const sandbox = (options.sandbox ?? {}) as Record<string, unknown>;
      assert.deepEqual(
        Object.values(sandbox).filter((v) => !(Array.isArray(v) && v.length === 0)),
        [],
        `${text}: ${JSON.stringify(options)}`,
      );
      assert.equal(options.env, undefined, text);
    }
  });

  it("keeps our rules for what it maps to: host paths, loader variables and non-http sources stay refused", () => {
    refused("find_links: [/etc]\n", "findLinks");
    refused("extra_index_urls: ['file:///opt/pypi/simple']\n", "extraIndexUrls");
    refused("dependencies: ['-e /etc']\n", "dependencies");
    // A "__proto__" key in the sandbox mapping stays a key the checks refuse; it never lends the section a `mode`.
    refused("sandbox: {__proto__: {mode: disabled}}\n", "sandbox.__proto__");
    refused("sandbox: {network: false, __proto__: {mode: disabled}}\n", "sandbox.__proto__");
    // share_cuda_ipc sets the variable only for the host; the file naming it itself is refused as before.
    refused("env: {PYISOLATE_ENABLE_CUDA_IPC: '1'}\n", "env.PYISOLATE_ENABLE_CUDA_IPC");
  });

  it("with a value of the wrong shape is a ConfigError naming the upstream key and the file", () => {
    refused("share_torch: 'yes'\n", "share_torch", /share_torch must be true or false/);
    refused("isolated: 1\n", "isolated");
    refused("dependencies: numpy\n", "dependencies");
    refused("sandbox: [x]\n", "sandbox");
    refused("cuda_wheels: [x]\n", "cuda_wheels");
    refused("package_manager: uv\nbackend: pip\n", "package_manager", /package_manager and backend both set installer/);
  });
});

describe("keys nobody writes", () => {
  it("stay a ConfigError naming the key and the file", () => {
    for (const key of ["isolate", "shareTorch", "share_gpu", "sandboxMode", "__proto__", "constructor", "toString"]) {
      refused(`${key}: true\n`, key, /unknown key/);
    }
  });
});

describe("docs/compat.md", () => {
  const docFile = path.join(TEST_DIR, "..", "docs", "compat.md");
  // scripts/test-as-user.mjs copies no docs into the unprivileged user's checkout.
  it(
    "has a row for every upstream key",
    { skip: existsSync(docFile) ? false : "docs/ is not in this checkout" },
    () => {
      const doc = readFileSync(docFile, "utf8");
      const section = doc.slice(doc.indexOf("## Configuration file (pyisolate.yaml)"));
      assert.ok(section.length > 40, "the section exists");
      const firstCells = section
        .split("\n")
        .filter((line) => line.startsWith("| `"))
        .map((line) => line.split("|")[1]!);
      for (const key of Object.keys(UPSTREAM_KEYS))
        assert.ok(
          firstCells.some((cell) => cell.includes(`\`${key}\``)),
          key,
        );
    },
  );
});

/** A manager whose warnings the test reads. */
function managerWithWarnings(
  venvRoot: string,
  options: Partial<ConstructorParameters<typeof ExtensionManager>[0]> = {},
): { manager: ExtensionManager; warnings: string[] } {
  const warnings: string[] = [];
  const logger: Logger = { debug() {}, info() {}, warn: (m) => void warnings.push(m), error() {} };
  return { manager: new ExtensionManager({ venvRoot, forwardOutput: false, logger, ...options }), warnings };
}

const NODES = { extensionClass: "pyisolate:SealedNodeExtension" } as const;

describe("ComfyUI-style packs with the field's pyisolate.yaml load unchanged", () => {
  let caps: SandboxCapabilities;
  const { manager, warnings } = managerWithWarnings(SHARED_VENV_ROOT);
  /** A host file the packs look for: visible only without a sandbox. */
  const hostFile = path.join(root.dir, "host-secret.txt");
  before(async () => {
    caps = await detectSandbox();
    writeFileSync(hostFile, "host\n");
  });
  after(() => manager.close());

  it("ComfyUI-IsolationToolkit's shape: its node answers, with one warning for share_torch", async () => {
    warnings.length = 0;
    const pack = await manager.load({
      ...NODES,
      name: "compat-yaml-toolkit",
      modulePath: fixture("compat_yaml_toolkit"),
      sandbox: { mode: "preferred" },
    });
    try {
      assert.deepEqual(await pack.call("list_nodes"), { CompatGreet: "Greet (compat)" });
      assert.deepEqual(await pack.call("execute_node", ["CompatGreet"], { kwargs: { who: "field" } }), ["hello field"]);
    } finally {
      await pack.stop();
    }
    assert.deepEqual(warnings.filter((w) => w.includes("pyisolate.yaml")).length, 1, warnings.join("\n"));
  });

  it("ComfyUI-IsolationTest's shape: its node answers; without the GPU given, CUDA IPC stays off", async () => {
    warnings.length = 0;
    const pack = await manager.load({
      ...NODES,
      name: "compat-yaml-isolation-test",
      modulePath: fixture("compat_yaml_isolation_test"),
      sandbox: { mode: "preferred" },
    });
    try {
      const [cudaIpc, layer] = (await pack.call("execute_node", ["CompatProbeEnvironment"])) as string[];
      assert.equal(cudaIpc, "");
      assert.equal(layer, "");
    } finally {
      await pack.stop();
    }
    assert.equal(warnings.filter((w) => /share_cuda_ipc: true is ignored/.test(w)).length, 1, warnings.join("\n"));
  });

  for (const mode of SANDBOX_MODES) {
    it(`ComfyUI-PyIsolated's shape (sandbox: false): under ${mode.label} the sandbox is what the code asked`, async (t) => {
      const why = unavailableMode(caps, mode.sandbox);
      if (why) return t.skip(why);
      const pack = await manager.load({
        ...NODES,
        name: `compat-yaml-pyisolated-${mode.tag}`,
        modulePath: fixture("compat_yaml_pyisolated"),
        sandbox: mode.sandbox,
      });
      try {
        const [seen] = (await pack.call("execute_node", ["CompatTryHostFile"], {
          kwargs: { path: hostFile },
        })) as boolean[];
        if (mode.tag === "none") {
          assert.equal(pack.sandbox.backend, "none");
          assert.equal(seen, true, "control: unsandboxed, the host file is there");
        } else {
          assert.equal(pack.sandbox.backend, mode.tag);
          assert.equal(seen, false, "the pack's sandbox: false did not open the host's files");
        }
      } finally {
        await pack.stop();
      }
    });
  }
});

describe("share_torch with a host layer named torch", () => {
  const venvs = path.join(root.dir, "venvs");
  let index: { indexUrl: string; wheels: string };
  let host: ReturnType<typeof managerWithWarnings>;
  before(() => {
    index = fixtureIndex(path.join(root.dir, "index"), ["1.0"]);
    // A small package stands in for torch: what matters is that the pack's venv is linked to the host's layer.
    host = managerWithWarnings(venvs, {
      sharedRuntimes: { torch: { dependencies: ["pyisolate-fixture-hello"], indexUrl: index.indexUrl } },
    });
  });
  after(() => host.manager.close());

  it("links the pack to the layer, and a code option sharedRuntime: null overrides the file", async () => {
    const modulePath = fixture("compat_yaml_isolation_test");
    const linked = await host.manager.load({
      ...NODES,
      name: "compat-yaml-layer",
      modulePath,
      sandbox: { mode: "preferred" },
    });
    try {
      const [, layer] = (await linked.call("execute_node", ["CompatProbeEnvironment"])) as string[];
      assert.match(layer ?? "", /\/\.shared\/torch\//);
    } finally {
      await linked.stop();
    }
    const sealed = await host.manager.load({
      ...NODES,
      name: "compat-yaml-nolayer",
      modulePath,
      sandbox: { mode: "preferred" },
      sharedRuntime: null,
    });
    try {
      const [, layer] = (await sealed.call("execute_node", ["CompatProbeEnvironment"])) as string[];
      assert.equal(layer, "");
    } finally {
      await sealed.stop();
    }
  });
});
