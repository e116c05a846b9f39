// Python pyisolate 0.10.2's own test extensions, fetched from PyPI, loaded unchanged under our host: what its
// host-side tests assert (tests/integration_v2 over tests/harness, test_uv_sealed_integration.py,
// test_conda_integration.py with pip standing in for conda), under bwrap and under Landlock. Its example/sealed_worker
// and example/torch_share live only in its git repository, not in the sdist, so they are not loaded here.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it, type TestContext } from "node:test";
import { RemoteError, Tensor, type SandboxOptions } from "../src/index.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import type { SandboxCapabilities } from "../src/sandbox/types.js";
import { fetchUpstream, type Fetched, type UpstreamTree } from "./compat-upstream-sdist.js";
import { makeManager } from "./helpers.js";
import { hasLocalTorchWheel, TORCH_REQUIREMENT } from "./torch-wheel.js";
import { unavailableMode } from "./sandbox-modes.js";

const SEALED = "pyisolate:SealedNodeExtension";
const MODES = [
  { label: "bwrap", tag: "bwrap", sandbox: { mode: "required", backend: "bwrap" } },
  { label: "Landlock", tag: "landlock", sandbox: { mode: "required", backend: "landlock" } },
] as const satisfies readonly { label: string; tag: string; sandbox: SandboxOptions }[];

const work = mkdtempSync(path.join(tmpdir(), "compat-upstream-"));
let fetched: Fetched;
let caps: SandboxCapabilities;
before(async () => {
  [fetched, caps] = await Promise.all([fetchUpstream(work), detectSandbox()]);
});
after(() => rmSync(work, { recursive: true, force: true }));

/** The unpacked sdist, or undefined after skipping the test with why (the registry is unreachable, or the mode). */
function upstream(t: TestContext, sandbox?: SandboxOptions): UpstreamTree | undefined {
  if ("unreachable" in fetched)
    return void t.skip(`pyisolate 0.10.2's sdist cannot be fetched: ${fetched.unreachable}`);
  const why = sandbox && unavailableMode(caps, sandbox);
  if (why) return void t.skip(why);
  return fetched.tree;
}

/** What the host's own Python calls its user site-packages and its site-packages (neither may leak into a worker). */
const hostSite = JSON.parse(
  execFileSync(
    "python3",
    ["-c", "import json, site; print(json.dumps([site.getusersitepackages(), site.getsitepackages()]))"],
    { encoding: "utf8" },
  ),
) as [string, string[]];

const torchTensor = (): Tensor => {
  const t = Tensor.from(new Float32Array([1, 2, 3, 4]), [2, 2]);
  t.framework = "torch";
  return t;
};

function assertSameTensor(actual: unknown, expected: Tensor): void {
  assert.ok(actual instanceof Tensor, `a Tensor, got ${JSON.stringify(actual)}`);
  assert.deepEqual(
    [actual.dtype, [...actual.shape], [...actual.toArray()]],
    [expected.dtype, [...expected.shape], [...expected.toArray()]],
  );
}

for (const mode of MODES) {
  describe(`pyisolate 0.10.2's test extensions (${mode.label})`, { timeout: 900_000 }, () => {
    const manager = makeManager();
    after(() => manager.close());

    it("tests/harness/test_package: ping, PYISOLATE_CHILD, and no writes to /etc/hosts or its own folder (integration_v2)", async (t) => {
      const tree = upstream(t, mode.sandbox);
      if (!tree) return;
      const ext = await manager.load({
        name: `up-harness-${mode.tag}`,
        modulePath: tree.testPackage,
        sandbox: mode.sandbox,
      });
      try {
        assert.equal(ext.extensionClass, "test_package:ReferenceTestExtension");
        assert.equal(await ext.call("ping"), "pong"); // test_debug_ping, test_extension_lifecycle
        assert.equal(await ext.call("get_env_var", ["PYISOLATE_CHILD"]), "1");
        assert.equal(await ext.call("echo_tensor", [torchTensor()]), "NO_TORCH", "no torch in a sealed venv");
        await assert.rejects(ext.call("write_file", ["/etc/hosts", "hacked"]), RemoteError); // test_filesystem_barrier
        await assert.rejects(
          ext.call("write_file", [path.join(tree.testPackage, "hacked.txt"), "hacked"]),
          RemoteError,
        ); // test_module_path_ro
        assert.equal(existsSync(path.join(tree.testPackage, "hacked.txt")), false);
      } finally {
        await ext.stop();
      }
    });

    it("tests/harness/test_package: the host's /tmp is hidden, the worker's /tmp scratch stays its own (Landlock: denied)", async (t) => {
      const tree = upstream(t, mode.sandbox);
      if (!tree) return;
      const markerDir = mkdtempSync("/tmp/pyisolate_host_tmp_");
      const marker = path.join(markerDir, "marker.txt");
      writeFileSync(marker, "host-only");
      const scratch = "/tmp/child_scratch.txt";
      const ext = await manager.load({
        name: `up-tmp-${mode.tag}`,
        modulePath: tree.testPackage,
        sandbox: mode.sandbox,
      });
      try {
        if (mode.tag === "bwrap") {
          // test_host_tmp_marker_hidden_from_child, as upstream asserts it.
          await assert.rejects(ext.call("read_file", [marker]), /No such file or directory/);
          assert.equal(await ext.call("write_file", [scratch, "child-only"]), "ok");
          assert.equal(await ext.call("read_file", [scratch]), "child-only");
        } else {
          // Documented difference (docs/compat.md): no mount namespace, so the host's /tmp is denied (EACCES, not
          // ENOENT) and a hard-coded /tmp is not writable; tempfile and $TMPDIR give the extension its private folder.
          await assert.rejects(
            ext.call("read_file", [marker]),
            (e: unknown) => e instanceof RemoteError && e.remoteType === "PermissionError",
          );
          await assert.rejects(
            ext.call("write_file", [scratch, "child-only"]),
            (e: unknown) => e instanceof RemoteError && e.remoteType === "PermissionError",
          );
        }
        assert.equal(existsSync(scratch), false, "the worker's /tmp scratch never reaches the host's /tmp");
      } finally {
        await ext.stop();
        rmSync(markerDir, { recursive: true, force: true });
      }
    });

    it("tests/fixtures/uv_sealed_worker: boltons from its own venv, the filesystem barrier, a tensor as TensorValue", async (t) => {
      const tree = upstream(t, mode.sandbox);
      if (!tree) return;
      const artifacts = mkdtempSync(path.join(work, "artifacts-"));
      const ext = await manager.load({
        name: `up-uv-${mode.tag}`,
        modulePath: tree.fixture("uv_sealed_worker"),
        extensionClass: SEALED,
        dependencies: ["boltons"],
        env: { PYISOLATE_ARTIFACT_DIR: artifacts },
        sandbox: { ...mode.sandbox, writablePaths: [artifacts] },
      });
      try {
        assert.equal(ext.sandbox.backend, mode.tag); // upstream: the launch argv starts with bwrap
        assert.deepEqual(await ext.call("list_nodes"), {
          UVSealedRuntimeProbe: "UV Sealed Runtime Probe",
          UVSealedBoltonsSlugify: "UV Sealed Boltons Slugify",
          UVSealedFilesystemBarrier: "UV Sealed Filesystem Barrier",
          UVSealedTensorEcho: "UV Sealed Tensor Echo",
          UVSealedLatentEcho: "UV Sealed Latent Echo",
        });
        const [pathDump, boltonsOrigin, , sawUserSite] = (await ext.call("execute_node", ["UVSealedRuntimeProbe"])) as [
          string,
          string,
          string,
          boolean,
        ];
        assert.ok(boltonsOrigin.startsWith(ext.environment.venvPath), `${boltonsOrigin} is in the extension's venv`);
        for (const site of hostSite[1])
          assert.ok(!boltonsOrigin.startsWith(site), `${boltonsOrigin} is not the host's`);
        assert.ok(!pathDump.split("\n").includes(hostSite[0]), "the user site is not on sys.path");
        assert.equal(sawUserSite, false);
        const [slug, slugOrigin] = (await ext.call("execute_node", ["UVSealedBoltonsSlugify"], {
          kwargs: { text: "Sealed Worker Still Works" },
        })) as string[];
        assert.deepEqual([slug, slugOrigin], ["sealed_worker_still_works", boltonsOrigin]);
        const [, outsideBlocked, moduleMutationBlocked, artifactWriteOk] = (await ext.call("execute_node", [
          "UVSealedFilesystemBarrier",
        ])) as unknown[];
        assert.deepEqual([outsideBlocked, moduleMutationBlocked, artifactWriteOk], [true, true, true]);
        // No torch and no numpy in this venv: the worker sees upstream's dict form, and the host gets a tensor back.
        const input = torchTensor();
        const [echoed, sawJsonTensor] = (await ext.call("execute_node", ["UVSealedTensorEcho"], {
          kwargs: { tensor: input },
        })) as [unknown, boolean];
        assertSameTensor(echoed, input);
        assert.equal(sawJsonTensor, true);
        assert.ok(existsSync(path.join(artifacts, "child_bootstrap_paths.txt")));
        assert.ok(existsSync(path.join(artifacts, "filesystem_barrier_probe.txt")));
        assert.equal(typeof (await ext.call("flush_transport_state")), "number");
      } finally {
        await ext.stop();
      }
    });

    it("tests/fixtures/conda_sealed_node (pip for conda): its folder on sys.path, packages from its venv, a numpy tensor", async (t) => {
      const tree = upstream(t, mode.sandbox);
      if (!tree) return;
      const artifacts = mkdtempSync(path.join(work, "artifacts-"));
      const fixturePath = tree.fixture("conda_sealed_node");
      const ext = await manager.load({
        name: `up-conda-${mode.tag}`,
        modulePath: fixturePath,
        extensionClass: SEALED,
        dependencies: ["packaging", "boltons", "numpy"],
        env: { PYISOLATE_ARTIFACT_DIR: artifacts },
        sandbox: { ...mode.sandbox, writablePaths: [artifacts] },
      });
      try {
        assert.deepEqual(await ext.call("list_nodes"), {
          InspectRuntime: "Inspect Runtime",
          EchoTensor: "Echo Tensor",
          OpenWeatherDataset: "Open Weather Dataset",
        });
        const [pathDump] = (await ext.call("execute_node", ["InspectRuntime"])) as string[];
        const entries = pathDump!.split("\n");
        assert.ok(entries.includes(fixturePath), `${fixturePath} on sys.path:\n${pathDump}`);
        assert.ok(!entries.includes(hostSite[0]), "the user site is not on sys.path");
        const [sum, gribPath] = (await ext.call("execute_node", ["OpenWeatherDataset"])) as [number, string];
        assert.equal(sum, 10);
        assert.ok(existsSync(gribPath), `${gribPath} exists on the host`);
        const input = torchTensor();
        const [echoed, sawJsonTensor] = (await ext.call("execute_node", ["EchoTensor"], {
          kwargs: { tensor: input },
        })) as [unknown, boolean];
        assertSameTensor(echoed, input);
        assert.equal(sawJsonTensor, false, "numpy is there: an ndarray, not the dict");
      } finally {
        await ext.stop();
      }
    });
  });
}

describe("pyisolate 0.10.2's sealed worker with the sandbox disabled (integration_v2 rpc coverage)", () => {
  const manager = makeManager();
  after(() => manager.close());
  it("answers ping", async (t) => {
    const tree = upstream(t);
    if (!tree) return;
    const ext = await manager.load({
      name: "up-harness-nosandbox",
      modulePath: tree.testPackage,
      sandbox: { mode: "disabled" },
    });
    try {
      assert.equal(await ext.call("ping"), "pong");
    } finally {
      await ext.stop();
    }
  });
});

describe(
  "tests/harness/test_package with a shared torch (share_torch=True)",
  { skip: hasLocalTorchWheel() ? false : "no local torch 2.13.0 wheel", timeout: 900_000 },
  () => {
    const manager = makeManager({ sharedRuntimes: { torch: { dependencies: [TORCH_REQUIREMENT], installer: "pip" } } });
    after(() => manager.close());
    for (const mode of MODES) {
      it(`echoes a CPU torch tensor and answers ping (test_tensors, rpc coverage; ${mode.label})`, async (t) => {
        const tree = upstream(t, mode.sandbox);
        if (!tree) return;
        const ext = await manager.load({
          name: `up-torch-${mode.tag}`,
          modulePath: tree.testPackage,
          sharedRuntime: "torch",
          installer: "pip",
          sandbox: mode.sandbox,
          startTimeoutMs: 600_000,
        });
        try {
          assert.equal(await ext.call("ping"), "pong");
          const ones = Tensor.from(new Float32Array(25).fill(1), [5, 5]);
          ones.framework = "torch";
          assertSameTensor(await ext.call("echo_tensor", [ones]), ones);
        } finally {
          await ext.stop();
        }
      });
    }
  },
);
