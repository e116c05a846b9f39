// pyisolate 0.10's runtime semantics through our host: hook-time calls, local and remote singletons, nested singletons,
// module names and sys.path, tensors for workers without torch, inference mode, and /tmp under each sandbox.

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ExtensionLoadError, Tensor, type Extension, type Logger } from "../src/index.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import type { SandboxCapabilities } from "../src/sandbox/types.js";
import { fixture, makeManager } from "./helpers.js";
import { hasLocalTorchWheel, TORCH_REQUIREMENT } from "./torch-wheel.js";
import { SANDBOX_MODES, unavailableMode } from "./sandbox-modes.js";

/** A logger that keeps its debug lines: an event sent during load has no listener yet and is logged as dropped. */
function recordingLogger(lines: string[]): Logger {
  const keep = (message: string) => void lines.push(message);
  return { debug: keep, info: keep, warn: keep, error: keep };
}

function provideServices(manager: ReturnType<typeof makeManager>): void {
  manager.provide("Greeter", { greet: (who: string) => `host greeting for ${who}` });
  manager.provide("Registry", { size: () => 3 });
  manager.provide("Names", { who: () => "host names" });
}

let caps: SandboxCapabilities;
before(async () => {
  caps = await detectSandbox();
});

for (const mode of SANDBOX_MODES) {
  describe(`pyisolate 0.10 habits in an extension (${mode.label})`, () => {
    const logLines: string[] = [];
    const manager = makeManager({ logger: recordingLogger(logLines) });
    provideServices(manager);
    after(() => manager.close());
    const load = (name: string, env?: Record<string, string>): Promise<Extension> =>
      manager.load({
        name: `compat-${name}-${mode.tag}`,
        modulePath: fixture("compat_guest_hooks"),
        sandbox: mode.sandbox,
        env,
      });

    it("on_module_loaded may register the extension again, register another callee, emit and call the host", async (t) => {
      const why = unavailableMode(caps, mode.sandbox);
      if (why) return t.skip(why);
      const ext = await load("hooks");
      try {
        assert.deepEqual(await ext.call("hook_report"), { greeting: "host greeting for the hook" });
        assert.ok(ext.methods.includes("hook_report") && !ext.methods.includes("register_callee"), ext.methods.join());
        assert.ok(
          logLines.some((l) => l.includes('event "hooked" has no listener')),
          "the hook's event reached the host",
        );
      } finally {
        await ext.stop();
      }
    });

    it("a singleton the host does not provide is local; a provided one is remote, its hinted singleton injected", async (t) => {
      const why = unavailableMode(caps, mode.sandbox);
      if (why) return t.skip(why);
      const ext = await load("singletons");
      try {
        assert.deepEqual(await ext.call("local_cache"), { hook: "kept", call: 1, same: true });
        assert.deepEqual(await ext.call("nested"), { size: 3, who: "host names" });
      } finally {
        await ext.stop();
      }
    });

    for (const [failure, message] of [
      ["raise", /ValueError: on_module_loaded failed on purpose/],
      ["conflict", /ValueError: a call target named 'extension' is already registered/],
      ["exit", /SystemExit: 7/],
    ] as const) {
      it(`a hook that fails (${failure}) fails the load with an ExtensionLoadError carrying the reason`, async (t) => {
        const why = unavailableMode(caps, mode.sandbox);
        if (why) return t.skip(why);
        await assert.rejects(load(`fail-${failure}`, { COMPAT_GUEST_FAIL: failure }), (e: unknown) => {
          assert.ok(e instanceof ExtensionLoadError, String(e));
          assert.match(e.message, message);
          return true;
        });
      });
    }

    it("a hyphenated folder loads under pyisolate's module name, with the folder itself on sys.path", async (t) => {
      const why = unavailableMode(caps, mode.sandbox);
      if (why) return t.skip(why);
      const ext = await manager.load({
        name: `compat-hyphen-${mode.tag}`,
        modulePath: fixture("compat_guest_hyphen-pack"),
        sandbox: mode.sandbox,
      });
      try {
        assert.equal(ext.extensionClass, "compat_guest_hyphen_pack:HyphenPack");
        assert.deepEqual(await ext.call("where"), {
          module: "compat_guest_hyphen_pack",
          sibling: "sibling",
          folder_on_path: true,
        });
      } finally {
        await ext.stop();
      }
    });

    it("/tmp and the temporary folder as pyisolate's harness probes them (Landlock differs, asserted)", async (t) => {
      const why = unavailableMode(caps, mode.sandbox);
      if (why) return t.skip(why);
      const hostDir = mkdtempSync("/tmp/compat_guest_host_");
      const marker = path.join(hostDir, "marker.txt");
      writeFileSync(marker, "host-only");
      const ext = await load("tmp");
      try {
        const seen = (await ext.call("tmp_report", [marker])) as Record<string, unknown>;
        assert.equal(seen.tempfile_ok, true, "tempfile works in every mode");
        assert.equal(seen.gettempdir, seen.TMPDIR, "tempfile.gettempdir() is the extension's private TMPDIR");
        if (mode.tag === "bwrap") {
          // As upstream: a private, writable /tmp; the host's /tmp does not exist inside.
          assert.equal(seen.TMPDIR, "/tmp");
          assert.equal(seen.read_host_file, "FileNotFoundError: No such file or directory");
          assert.equal(seen.write_tmp, "ok");
          assert.equal(existsSync("/tmp/compat_guest_scratch.txt"), false, "the private /tmp is not the host's");
        } else if (mode.tag === "landlock") {
          // Different: no mount namespace, so /tmp is the host's, denied (EACCES, not ENOENT), and not writable; the
          // extension's temporary folder is its private TMPDIR, a host folder, which tempfile uses.
          assert.notEqual(seen.TMPDIR, "/tmp");
          assert.equal(seen.read_host_file, "PermissionError: Permission denied");
          assert.equal(seen.write_tmp, "PermissionError: Permission denied");
        } else {
          assert.equal(seen.read_host_file, "ok", "no sandbox: the host's files are the extension's");
        }
      } finally {
        await ext.stop();
        rmSync(hostDir, { recursive: true, force: true });
        if (mode.tag === "none") rmSync("/tmp/compat_guest_scratch.txt", { force: true });
      }
    });
  });
}

describe("a torch tensor sent to a worker without torch", () => {
  const manager = makeManager();
  after(() => manager.close());
  const torchTensor = (): Tensor => {
    const t = Tensor.from(new Float32Array([1, 2, 3, 4]), [2, 2]);
    t.framework = "torch";
    return t;
  };

  it("arrives as pyisolate's TensorValue dict without numpy, and comes back to the host as a tensor", async () => {
    const ext = await manager.load({
      name: "compat-tensor-bare",
      modulePath: fixture("compat_guest_tensor"),
      sandbox: { mode: "disabled" },
    });
    try {
      assert.deepEqual(await ext.call("kind", [torchTensor()]), {
        kind: "dict",
        value: {
          __type__: "TensorValue",
          dtype: "torch.float32",
          tensor_size: [2, 2],
          requires_grad: false,
          data: [
            [1, 2],
            [3, 4],
          ],
        },
      });
      const back = (await ext.call("echo", [torchTensor()])) as Tensor;
      assert.ok(back instanceof Tensor);
      assert.deepEqual([back.dtype, [...back.shape], back.framework], ["float32", [2, 2], "torch"]);
      assert.deepEqual([...back.toArray()], [1, 2, 3, 4]);
    } finally {
      await ext.stop();
    }
  });

  it("arrives as a numpy array where numpy is installed", async () => {
    const ext = await manager.load({
      name: "compat-tensor-numpy",
      modulePath: fixture("compat_guest_tensor"),
      dependencies: ["numpy"],
      sandbox: { mode: "disabled" },
    });
    try {
      assert.deepEqual(await ext.call("kind", [torchTensor()]), {
        kind: "numpy.ndarray",
        value: [
          [1, 2],
          [3, 4],
        ],
      });
    } finally {
      await ext.stop();
    }
  });
});

describe(
  "with a shared torch (pyisolate's share_torch)",
  { skip: hasLocalTorchWheel() ? false : "no local torch 2.13.0 wheel", timeout: 900_000 },
  () => {
    const manager = makeManager({ sharedRuntimes: { torch: { dependencies: [TORCH_REQUIREMENT], installer: "pip" } } });
    after(() => manager.close());
    const load = (name: string, inferenceMode?: boolean): Promise<Extension> =>
      manager.load({
        name,
        modulePath: fixture("compat_guest_tensor"),
        sharedRuntime: "torch",
        installer: "pip",
        startTimeoutMs: 600_000,
        inferenceMode,
      });

    it("the hook, every call and the worker threads run under torch.inference_mode(); inferenceMode: false turns it off", async () => {
      const on = await load("compat-inference-on");
      const off = await load("compat-inference-off", false);
      try {
        assert.deepEqual(await on.call("inference"), { call: true, hook: true, thread: true });
        assert.deepEqual(await off.call("inference"), { call: false, hook: false, thread: false });
      } finally {
        await Promise.all([on.stop(), off.stop()]);
      }
    });
  },
);
