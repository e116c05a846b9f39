// The option vocabularies (one list each), the installer's new name and its deprecated alias, and the cudaIpc option.

import assert from "node:assert/strict";
import { cpSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ConfigError, ExtensionManager, type Logger } from "../src/index.js";
import { validateExtensionOptions, validateManagerOptions } from "../src/config/validate.js";
import { EXTENSION_OPTION_KEYS, MANAGER_OPTION_KEYS } from "../src/config/known-keys.js";
import { cudaIpcWanted } from "../src/config/env-policy.js";
import { INSTALLER_RENAMED } from "../src/config/renamed.js";
import { buildCleanEnv } from "../src/process/clean-env.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import {
  INSTALLERS,
  quotedChoices,
  SANDBOX_BACKEND_CHOICES,
  SANDBOX_MODES,
  TENSOR_TRANSPORT_OPTIONS,
} from "../src/vocabulary.js";
import { fixture } from "./helpers.js";
import { SANDBOX_CASES, unavailable } from "./trust-config-helpers.js";

const PROBE = fixture("config_vocab_env");
const CUDA_IPC = "PYISOLATE_ENABLE_CUDA_IPC";

/** The ConfigError that `run` throws (failing the test when it throws none or another). */
function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error;
  }
  assert.fail("expected a ConfigError, got none");
}

/** A logger that keeps its warnings. */
function keeper(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return {
    warnings,
    debug: () => {},
    info: () => {},
    warn: (message: string) => warnings.push(message),
    error: () => {},
  };
}

describe("each option vocabulary is one list", () => {
  const load = (extra: object) => validateExtensionOptions({ name: "vocab", modulePath: PROBE, ...extra });
  const vocabularies: [string, readonly string[], (word: string) => object][] = [
    ["sandbox.mode", SANDBOX_MODES, (mode) => ({ sandbox: { mode } })],
    ["sandbox.backend", SANDBOX_BACKEND_CHOICES, (backend) => ({ sandbox: { backend } })],
    ["installer", INSTALLERS, (installer) => ({ installer })],
    ["tensorTransport", TENSOR_TRANSPORT_OPTIONS, (tensorTransport) => ({ tensorTransport })],
  ];

  for (const [key, words, option] of vocabularies) {
    it(`${key} accepts every word of its list and refuses any other, listing the words`, () => {
      for (const word of words) load(option(word));
      const error = configError(() => load(option("conda")));
      assert.equal(error.key, key);
      assert.equal(error.message, `${key} must be ${quotedChoices(words)}`);
    });
  }

  it("a shared runtime layer's installer is checked against the same list", () => {
    const error = configError(() =>
      validateManagerOptions({
        venvRoot: "/tmp/v",
        sharedRuntimes: { t: { dependencies: ["six"], installer: "conda" as "pip" } },
      }),
    );
    assert.equal(error.key, "sharedRuntimes.t.installer");
    assert.match(error.message, new RegExp(quotedChoices(INSTALLERS)));
  });

  it("lists words as prose: one alone, two with or, more with commas", () => {
    assert.equal(quotedChoices(["a"]), '"a"');
    assert.equal(quotedChoices(["a", "b"]), '"a" or "b"');
    assert.equal(quotedChoices(["a", "b", "c"]), '"a", "b" or "c"');
  });

  it("the known keys include the new ones, and a slip of installer is told the right name", () => {
    assert.ok(EXTENSION_OPTION_KEYS.includes("installer") && EXTENSION_OPTION_KEYS.includes("cudaIpc"));
    assert.ok(MANAGER_OPTION_KEYS.includes("installer"));
    const error = configError(() => load({ instaler: "pip" }));
    assert.match(error.message, /did you mean "installer"/);
  });
});

describe("installer, formerly backend", () => {
  it("backend given in code comes back as installer, with the one deprecation note", () => {
    const notes: string[] = [];
    const checked = validateExtensionOptions({ name: "vocab", modulePath: PROBE, backend: "pip" }, (note) =>
      notes.push(note),
    );
    assert.equal(checked.installer, "pip");
    assert.equal("backend" in checked, false);
    assert.deepEqual(notes, [INSTALLER_RENAMED]);
  });

  it("installer alone gives no note, and both names agreeing is accepted", () => {
    const notes: string[] = [];
    assert.equal(
      validateExtensionOptions({ name: "vocab", modulePath: PROBE, installer: "uv" }, (n) => notes.push(n)).installer,
      "uv",
    );
    assert.deepEqual(notes, []);
    assert.equal(
      validateExtensionOptions({ name: "vocab", modulePath: PROBE, installer: "uv", backend: "uv" }).installer,
      "uv",
    );
  });

  it("both names with different values is a ConfigError naming backend; a bad old value is told under its old name", () => {
    const clash = configError(() =>
      validateExtensionOptions({ name: "vocab", modulePath: PROBE, installer: "uv", backend: "pip" }),
    );
    assert.equal(clash.key, "backend");
    assert.match(clash.message, /^backend \(deprecated\) and installer disagree/);
    const bad = configError(() => validateManagerOptions({ venvRoot: "/tmp/v", backend: "conda" as "pip" }));
    assert.equal(bad.key, "backend");
  });

  describe("in a real manager", () => {
    let root: string;
    before(() => {
      root = realpathSync(mkdtempSync(path.join(tmpdir(), "config-vocab-")));
    });
    after(() => rmSync(root, { recursive: true, force: true }));

    it("the old name in the manager, a layer and two loads builds with pip and warns exactly once", async () => {
      const logger = keeper();
      const manager = new ExtensionManager({
        venvRoot: path.join(root, "venvs-code"),
        backend: "pip",
        logger,
        forwardOutput: false,
        sharedRuntimes: { unused: { dependencies: ["six"], backend: "pip" } },
      });
      try {
        const a = await manager.load({
          name: "vocab-old-a",
          modulePath: PROBE,
          backend: "pip",
          sandbox: { mode: "disabled" },
        });
        const b = await manager.load({ name: "vocab-old-b", modulePath: PROBE, sandbox: { mode: "disabled" } });
        assert.equal(a.environment.backend, "pip");
        assert.equal(b.environment.backend, "pip", "the manager's deprecated backend is its default installer");
        assert.deepEqual(
          logger.warnings.filter((w) => w.includes('"backend" is deprecated')),
          [`pyisolate: ${INSTALLER_RENAMED}`],
        );
      } finally {
        await manager.close();
      }
    });

    it("backend in pyisolate.yaml is read as installer, with a warning naming the file; installer there gives none", async () => {
      const logger = keeper();
      const manager = new ExtensionManager({ venvRoot: path.join(root, "venvs-file"), logger, forwardOutput: false });
      try {
        for (const [name, key] of [
          ["vocab-yaml-old", "backend"],
          ["vocab-yaml-new", "installer"],
        ] as const) {
          const folder = path.join(root, name);
          cpSync(PROBE, folder, { recursive: true });
          writeFileSync(path.join(folder, "pyisolate.yaml"), `${key}: pip\n`);
          const ext = await manager.load({ name, modulePath: folder, sandbox: { mode: "disabled" } });
          assert.equal(ext.environment.backend, "pip", `${key}: pip in the file builds with pip`);
        }
        const notes = logger.warnings.filter((w) => w.includes('"backend" is deprecated'));
        assert.equal(notes.length, 1, JSON.stringify(logger.warnings));
        assert.match(notes[0]!, /vocab-yaml-old\/pyisolate\.yaml/);
      } finally {
        await manager.close();
      }
    });
  });
});

describe("cudaIpc", () => {
  it("the option decides; unset, the host's PYISOLATE_ENABLE_CUDA_IPC=1 turns it on; else the env options decide", () => {
    assert.equal(cudaIpcWanted(true, {}), true);
    assert.equal(cudaIpcWanted(false, { [CUDA_IPC]: "1" }), false);
    assert.equal(cudaIpcWanted(undefined, { [CUDA_IPC]: "1" }), true);
    assert.equal(cudaIpcWanted(undefined, { [CUDA_IPC]: "0" }), undefined);
    assert.equal(cudaIpcWanted(undefined, {}), undefined);
  });

  it("the clean environment carries the switch when it is on and drops it, even from env, when it is off", () => {
    const base = { hostEnv: { [CUDA_IPC]: "1", SECRET: "x" }, venvPath: "/v", home: "/h", tmpdir: "/t" };
    assert.equal(buildCleanEnv(base)[CUDA_IPC], undefined, "the host's variable alone is not passed through");
    assert.equal(buildCleanEnv({ ...base, cudaIpc: true })[CUDA_IPC], "1");
    assert.equal(buildCleanEnv({ ...base, cudaIpc: false, extra: { [CUDA_IPC]: "1" } })[CUDA_IPC], undefined);
    assert.equal(buildCleanEnv({ ...base, extra: { [CUDA_IPC]: "1" } })[CUDA_IPC], "1");
  });

  it("cudaIpc must be a boolean, and true under a sandbox needs sandbox.gpu", () => {
    const load = (extra: object) => validateExtensionOptions({ name: "vocab", modulePath: PROBE, ...extra });
    assert.equal(configError(() => load({ cudaIpc: "yes" })).key, "cudaIpc");
    assert.match(configError(() => load({ cudaIpc: true })).message, /^cudaIpc: true needs sandbox\.gpu: true/);
    assert.equal(load({ cudaIpc: true, sandbox: { gpu: true } }).cudaIpc, true);
    assert.equal(load({ cudaIpc: true, sandbox: { mode: "disabled" } }).cudaIpc, true);
    assert.equal(load({ cudaIpc: false }).cudaIpc, false);
  });

  describe("reaches the extension process", () => {
    let root: string;
    let manager: ExtensionManager;
    const caps = detectSandbox();
    before(() => {
      root = realpathSync(mkdtempSync(path.join(tmpdir(), "config-vocab-ipc-")));
      manager = new ExtensionManager({
        venvRoot: path.join(root, "venvs"),
        installer: "pip",
        forwardOutput: false,
        logger: keeper(),
      });
    });
    after(async () => {
      await manager.close();
      rmSync(root, { recursive: true, force: true });
    });

    for (const c of SANDBOX_CASES) {
      it(`under ${c.label}: cudaIpc true gives the extension PYISOLATE_ENABLE_CUDA_IPC=1, false keeps an env entry out`, async (t) => {
        const why = unavailable(c, await caps);
        if (why) return t.skip(why);
        const sandbox = { ...c.sandbox, gpu: true };
        const on = await manager.load({ name: `vocab-ipc-on-${c.label}`, modulePath: PROBE, cudaIpc: true, sandbox });
        const off = await manager.load({
          name: `vocab-ipc-off-${c.label}`,
          modulePath: PROBE,
          cudaIpc: false,
          env: { [CUDA_IPC]: "1" },
          sandbox,
        });
        assert.equal(await on.call("variable", [CUDA_IPC]), "1");
        assert.equal(await off.call("variable", [CUDA_IPC]), null);
        await Promise.all([on.stop(), off.stop()]);
      });
    }
  });
});
