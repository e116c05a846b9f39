// The working_dir zip and the Ray options, without a cluster: links are never followed, the zip is one Python's
// zipfile reads back bit-exact, its URI follows its content, and bad options are ConfigErrors that name the key.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { guestJobSubmission, findGuestReport } from "../src/ray/job-spec.js";
import { validatePlacement, validateRayCluster } from "../src/ray/options-check.js";
import { buildPackage, collectFiles } from "../src/ray/package-zip.js";
import { unplaceable } from "../src/ray/ray-job.js";
import type { RayNode } from "../src/ray/jobs-client.js";
import { ConfigError, ExtensionManager } from "../src/index.js";

const root = mkdtempSync(join(tmpdir(), "ray-package-"));
after(() => rmSync(root, { recursive: true, force: true }));

describe("the package Ray unpacks as the working_dir", () => {
  const ext = join(root, "ext");
  mkdirSync(join(ext, "sub", "__pycache__"), { recursive: true });
  writeFileSync(join(ext, "__init__.py"), "X = 1\n");
  writeFileSync(join(ext, "sub", "data.txt"), "data\n");
  writeFileSync(join(ext, "sub", "__pycache__", "x.pyc"), "junk");
  const secret = join(root, "secret.txt");
  writeFileSync(secret, "host secret\n");
  mkdirSync(join(root, "secret-dir"));
  writeFileSync(join(root, "secret-dir", "key"), "host key\n");
  symlinkSync(secret, join(ext, "link.txt"));
  symlinkSync(join(root, "secret-dir"), join(ext, "linked-dir"));

  it("holds the folder's regular files and leaves out symlinks to files and folders and __pycache__", async () => {
    const names = (await collectFiles([{ dir: ext, prefix: "ext/probe" }])).map((e) => e.name);
    assert.deepEqual(names, ["ext/probe/__init__.py", "ext/probe/sub/data.txt"]);
  });

  it("refuses a source folder that is itself a symlink", async () => {
    const linked = join(root, "linked-ext");
    symlinkSync(ext, linked);
    await assert.rejects(collectFiles([{ dir: linked, prefix: "" }]), /ENOTDIR|ELOOP/);
  });

  it("writes a zip that Python's zipfile reads back byte for byte, under a URI that follows the content", async () => {
    const first = await buildPackage([{ dir: ext, prefix: "ext/probe" }]);
    const again = await buildPackage([{ dir: ext, prefix: "ext/probe" }]);
    assert.equal(first.uri, again.uri);
    assert.match(first.uri, /^gcs:\/\/_ray_pkg_[0-9a-f]{32}\.zip$/);
    const zipFile = join(root, "p.zip");
    writeFileSync(zipFile, first.zip);
    const listed = execFileSync(
      "python3",
      [
        "-c",
        "import sys,zipfile,json; z=zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; print(json.dumps({n: z.read(n).decode() for n in z.namelist()}))",
        zipFile,
      ],
      { encoding: "utf8" },
    );
    assert.deepEqual(JSON.parse(listed), { "ext/probe/__init__.py": "X = 1\n", "ext/probe/sub/data.txt": "data\n" });
    writeFileSync(join(ext, "__init__.py"), "X = 2\n");
    assert.notEqual((await buildPackage([{ dir: ext, prefix: "ext/probe" }])).uri, first.uri);
  });

  it("refuses a folder over the size limit", async () => {
    await assert.rejects(buildPackage([{ dir: ext, prefix: "" }], { maxBytes: 3 }), /over its size limit/);
  });
});

describe("the guest's job and its report", () => {
  it("asks Ray for the placement as the entrypoint's resources and never runs the venv's site before the guest", () => {
    const job = guestJobSubmission({
      name: "x",
      packageUri: "gcs://_ray_pkg_ab.zip",
      moduleName: "probe",
      dependencies: ["numpy==2.2.6"],
      placement: { numCpus: 1, numGpus: 0.5, resources: { node_b: 1 } },
      env: { PYISOLATE_TOKEN: "t" },
      sandboxMode: "required",
      pipInstallOptions: undefined,
    });
    assert.equal(job.entrypoint, "python -I -S -u pyisolate/_guest/ray_entry.py");
    assert.equal(job.entrypoint_num_cpus, 1);
    assert.equal(job.entrypoint_num_gpus, 0.5);
    assert.deepEqual(job.entrypoint_resources, { node_b: 1 });
    const env = job.runtime_env!;
    assert.equal(env.working_dir, "gcs://_ray_pkg_ab.zip");
    assert.deepEqual(env.pip, {
      packages: ["numpy==2.2.6"],
      pip_check: false,
      pip_install_options: ["--only-binary", ":all:"],
    });
    assert.deepEqual(env.env_vars, {
      PYISOLATE_TOKEN: "t",
      PYISOLATE_SANDBOX_MODE: "required",
      PYISOLATE_MODULE_DIR: "ext/probe",
    });
  });

  it("reads only the first report line, so that the extension's later output cannot forge one", () => {
    const logs =
      'Running entrypoint\nPYISOLATE_RAY_GUEST {"pid": 42, "python": "3.11", "sandbox": {"backend": "landlock", "abi": 7}, "mode": "required"}\n' +
      'PYISOLATE_RAY_GUEST {"pid": 1, "sandbox": {"backend": "none", "reason": "forged"}}\n';
    assert.equal(findGuestReport(logs)?.pid, 42);
    assert.equal(findGuestReport("Running entrypoint\n"), undefined);
    assert.equal(findGuestReport("PYISOLATE_RAY_GUEST {not json\n"), undefined);
  });

  it("knows a placement that no alive node offers", () => {
    const nodes: RayNode[] = [
      { nodeId: "a", nodeIp: "h", isHead: true, state: "ALIVE", resources: { CPU: 2 } },
      { nodeId: "b", nodeIp: "h", isHead: false, state: "DEAD", resources: { CPU: 2, GPU: 1 } },
    ];
    assert.equal(unplaceable(nodes, { entrypoint: "x", entrypoint_num_cpus: 2 }), undefined);
    assert.equal(unplaceable(nodes, { entrypoint: "x", entrypoint_num_gpus: 1 }), '{"GPU":1}');
  });
});

describe("the Ray options", () => {
  it("are ConfigErrors that name the key", () => {
    const key = (fn: () => unknown) => {
      try {
        fn();
      } catch (error) {
        assert.ok(error instanceof ConfigError);
        return error.key;
      }
      return "no error";
    };
    assert.equal(
      key(() => validateRayCluster({ address: "127.0.0.1:8265" })),
      "cluster.ray.address",
    );
    assert.equal(
      key(() => validateRayCluster({ address: "http://h:8265", adress: 1 })),
      "cluster.ray.adress",
    );
    assert.equal(
      key(() => validateRayCluster({ address: "http://h:8265", livenessTimeoutMs: 100 })),
      "cluster.ray.livenessTimeoutMs",
    );
    assert.equal(
      key(() => validateRayCluster({ address: "http://h:8265", autoscaling: "yes" })),
      "cluster.ray.autoscaling",
    );
    assert.equal(
      key(() => validateRayCluster({ address: "http://h:8265", livenessTimeoutMs: 5000, autoscaling: false })),
      "no error",
    );
    assert.equal(
      key(() => validatePlacement({ ray: { numCpus: -1 } })),
      "placement.ray.numCpus",
    );
    assert.equal(
      key(() => validatePlacement({ ray: { resources: { node_b: "1" } } })),
      "placement.ray.resources.node_b",
    );
    assert.equal(
      key(() => validatePlacement({ rey: {} })),
      "placement.rey",
    );
    assert.equal(
      key(() => new ExtensionManager({ venvRoot: root, cluster: { ray: { address: "ftp://x" } } })),
      "cluster.ray.address",
    );
  });

  it("make a load with placement.ray but no cluster.ray fail with a ConfigError before anything runs", async () => {
    const manager = new ExtensionManager({ venvRoot: root });
    await assert.rejects(manager.load({ name: "x", modulePath: root, placement: { ray: {} } }), (error: Error) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /placement\.ray needs a cluster/);
      return true;
    });
    await manager.close();
  });
});

describe("a job without dependencies", () => {
  it("asks Ray for no venv: the node's own python runs the guest", () => {
    const job = guestJobSubmission({
      name: "x",
      packageUri: "gcs://_ray_pkg_ab.zip",
      moduleName: "probe",
      dependencies: [],
      placement: {},
      env: {},
      sandboxMode: "preferred",
      pipInstallOptions: undefined,
    });
    assert.equal(job.runtime_env!.pip, undefined);
    assert.equal(job.entrypoint_resources, undefined);
    assert.equal(job.entrypoint_num_cpus, 0);
  });
});
