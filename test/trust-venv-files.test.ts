// The host's file handling under a venv: state, interpreter links, pyvenv.cfg, layer stubs and relocation never
// follow a symlink install code planted, never read an oversized file, and the guest starts the recorded interpreter.

import assert from "node:assert/strict";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { EnvironmentBuildError } from "../src/errors.js";
import {
  readState,
  removeState,
  statePath,
  STATE_SCHEMA,
  writeState,
  type EnvironmentState,
} from "../src/env/fingerprint.js";
import { layoutProblem, pyvenvCfgText, restoreLayout } from "../src/env/layout.js";
import {
  linkSharedRuntime,
  MAX_STUB_FILE_BYTES,
  sharedRuntimeLink,
  sitePackagesOf,
} from "../src/env/shared-runtime.js";
import { relocateVenv } from "../src/env/swap.js";
import { installCacheDir } from "../src/env/install/sandbox.js";
import { buildPath } from "../src/env/swap.js";
import { buildLaunchCommand, VENV_ENV } from "../src/process/launch.js";
import { buildInstallLandlockRules } from "../src/env/install/landlock-rules.js";
import { buildInstallBwrapArgs } from "../src/env/install/bwrap-policy.js";
import { tempRoot } from "./fixtures/env/helpers.js";

const root = tempRoot("pyisolate-trust-venv-files-");
const decoy = path.join(root.dir, "host-file.txt");
const DECOY = "the host's own file\n";
const python = { path: "/opt/python-3.11.7/bin/python3.11", version: "3.11.7" };
const layout = { python, systemSitePackages: false };
let n = 0;
const fresh = (what: string): string => {
  const dir = path.join(root.dir, `${what}-${++n}`);
  mkdirSync(dir, { recursive: true });
  return dir;
};

before(() => writeFileSync(decoy, DECOY));
after(() => root.remove());

function sampleState(): Omit<EnvironmentState, "schema"> {
  return {
    fingerprint: "a".repeat(64),
    inputs: { python, dependencies: [], indexUrl: null, extraIndexUrls: [], findLinks: [], runtimeVersion: "t" },
    python: { request: null, pathHit: null, interpreter: { size: 1, mtimeMs: 1, ino: 1 } },
    installer: "pip",
    builtAt: new Date(0).toISOString(),
  };
}

describe("the state file, in the host-owned folder", () => {
  it("lives under venvRoot/.state, outside the venv that installs write", () => {
    assert.equal(statePath("/v", "ext"), "/v/.state/ext.json");
  });

  it("is written by rename over planted symlinks (at its name and the old temp name), never through them", async () => {
    const venvRoot = fresh("state");
    mkdirSync(path.join(venvRoot, ".state"));
    symlinkSync(decoy, statePath(venvRoot, "ext"));
    // The temp name the old host used (`<file>.<pid>.tmp`): the new one is random and created O_EXCL|O_NOFOLLOW.
    symlinkSync(decoy, `${statePath(venvRoot, "ext")}.${process.pid}.tmp`);
    await writeState(venvRoot, "ext", sampleState());
    assert.equal(readFileSync(decoy, "utf8"), DECOY);
    assert.ok(lstatSync(statePath(venvRoot, "ext")).isFile());
    assert.equal((await readState(venvRoot, "ext"))?.schema, STATE_SCHEMA);
  });

  it("is not read through a symlink, even to a valid state; an oversized or non-regular one is not read", async () => {
    const venvRoot = fresh("state");
    await writeState(path.join(venvRoot, "elsewhere"), "ext", sampleState());
    mkdirSync(path.join(venvRoot, ".state"));
    symlinkSync(statePath(path.join(venvRoot, "elsewhere"), "ext"), statePath(venvRoot, "ext"));
    assert.ok(await readState(path.join(venvRoot, "elsewhere"), "ext"), "the target itself is a valid state");
    assert.equal(await readState(venvRoot, "ext"), undefined);
    await removeState(venvRoot, "ext");
    assert.ok(
      existsSync(statePath(path.join(venvRoot, "elsewhere"), "ext")),
      "removing the link left its target alone",
    );
    writeFileSync(statePath(venvRoot, "big"), `${JSON.stringify(sampleState())}${" ".repeat(1 << 20)}`);
    assert.equal(await readState(venvRoot, "big"), undefined);
    mkdirSync(statePath(venvRoot, "dir"));
    assert.equal(await readState(venvRoot, "dir"), undefined);
  });

  it("refuses a state folder that is a symlink to a host folder", async () => {
    const venvRoot = fresh("state");
    const hostDir = fresh("host-dir");
    symlinkSync(hostDir, path.join(venvRoot, ".state"));
    await assert.rejects(writeState(venvRoot, "ext", sampleState()), /not a real folder/);
    assert.equal(existsSync(path.join(hostDir, "ext.json")), false);
  });
});

describe("the install sandbox and the state folder", () => {
  it("binds nothing writable at or above venvRoot/.state, under bwrap or Landlock", () => {
    const venvRoot = "/srv/venvs";
    const stateDir = path.dirname(statePath(venvRoot, "ext"));
    const policy = {
      network: true,
      buildDir: buildPath(venvRoot, "ext"),
      cacheDir: installCacheDir(venvRoot, "ext", "uv"),
      readonlyPaths: [],
      configFiles: [],
    };
    const args = buildInstallBwrapArgs(policy);
    const writable = args.flatMap((a, i) => (a === "--bind" || a === "--bind-try" ? [args[i + 1]!] : []));
    assert.deepEqual(writable.sort(), [policy.buildDir, policy.cacheDir].sort());
    const rules = buildInstallLandlockRules({ ...policy, home: "/tmp/i/home", tmp: "/tmp/i/tmp" });
    for (const dir of [...writable, ...rules.writable]) {
      assert.ok(
        !(stateDir === dir || stateDir.startsWith(`${dir}/`)),
        `${dir} would let the install write ${stateDir}`,
      );
    }
  });
});

describe("the venv's interpreter links and pyvenv.cfg, from the host's record", () => {
  it("restoreLayout replaces a script bin/python, a pyvenv.cfg symlinked to a host file, and a bin/ that is a symlink", async () => {
    const venv = fresh("venv");
    const hostDir = fresh("host-bin");
    writeFileSync(path.join(hostDir, "keep"), "host");
    symlinkSync(hostDir, path.join(venv, "bin"));
    symlinkSync(decoy, path.join(venv, "pyvenv.cfg"));
    assert.match((await layoutProblem(venv, layout))!, /bin\/ is not a real folder/);
    await restoreLayout(venv, layout);
    assert.deepEqual(
      readFileSync(path.join(hostDir, "keep"), "utf8"),
      "host",
      "the host folder behind bin/ is untouched",
    );
    assert.equal(existsSync(path.join(hostDir, "python")), false);
    assert.equal(readFileSync(decoy, "utf8"), DECOY, "pyvenv.cfg was replaced, not written through");
    assert.equal(readlinkSync(path.join(venv, "bin", "python")), python.path);
    assert.equal(readlinkSync(path.join(venv, "bin", "python3.11")), "python");
    assert.equal(await layoutProblem(venv, layout), undefined);

    rmSync(path.join(venv, "bin", "python3"));
    writeFileSync(path.join(venv, "bin", "python3"), "#!/bin/sh\necho pwned\n");
    assert.match((await layoutProblem(venv, layout))!, /bin\/python3 is not the host's link/);
    await restoreLayout(venv, layout);
    writeFileSync(path.join(venv, "pyvenv.cfg"), "home = /\nexecutable = /etc/passwd\n");
    assert.match((await layoutProblem(venv, layout))!, /pyvenv.cfg is not the one the host wrote/);
    await restoreLayout(venv, layout);
    assert.equal(readFileSync(path.join(venv, "pyvenv.cfg"), "utf8"), pyvenvCfgText(layout));
    assert.doesNotMatch(pyvenvCfgText(layout), /passwd/);
  });
});

describe("shared runtime stubs, from the layer's files", () => {
  function layer(): { venvPath: string; site: string } {
    const venvPath = fresh("layer");
    const site = sitePackagesOf(venvPath, python.version);
    mkdirSync(path.join(site, "good-1.0.dist-info"), { recursive: true });
    writeFileSync(
      path.join(site, "good-1.0.dist-info", "METADATA"),
      "Metadata-Version: 2.1\nName: good\nVersion: 1.0\n",
    );
    return { venvPath, site };
  }
  const link = async (l: { venvPath: string }) =>
    sharedRuntimeLink("gpu", { venvPath: l.venvPath, pythonVersion: python.version, fingerprint: "f".repeat(64) });

  it("copies regular files and skips a dist-info that is a symlink to a host folder", async () => {
    const l = layer();
    const hostDist = fresh("host-dist-info");
    writeFileSync(path.join(hostDist, "METADATA"), "Name: host\n");
    symlinkSync(hostDist, path.join(l.site, "host-9.9.dist-info"));
    const venv = fresh("venv");
    assert.deepEqual(await linkSharedRuntime(venv, python, await link(l)), ["good"]);
    const own = sitePackagesOf(venv, python.version);
    assert.match(readFileSync(path.join(own, "good-1.0.dist-info", "METADATA"), "utf8"), /Name: good/);
    assert.equal(existsSync(path.join(own, "host-9.9.dist-info")), false);
  });

  it("refuses a METADATA that is a symlink to a host file, or larger than the cap", async () => {
    for (const plant of ["symlink", "oversized"] as const) {
      const l = layer();
      const meta = path.join(l.site, "good-1.0.dist-info", "METADATA");
      rmSync(meta);
      if (plant === "symlink") symlinkSync(decoy, meta);
      else writeFileSync(meta, Buffer.alloc(MAX_STUB_FILE_BYTES + 1, 0x41));
      const venv = fresh("venv");
      const err = await linkSharedRuntime(venv, python, await link(l)).catch((e: unknown) => e);
      assert.ok(err instanceof EnvironmentBuildError, `${plant}: ${String(err)}`);
      assert.match(err.message, plant === "symlink" ? /symlink/ : /over the limit/);
      assert.equal(
        existsSync(path.join(sitePackagesOf(venv, python.version), "good-1.0.dist-info", "METADATA")),
        false,
      );
    }
  });

  it("refuses a layer whose site-packages leads out of its venv", async () => {
    const venvPath = fresh("layer");
    const site = sitePackagesOf(venvPath, python.version);
    mkdirSync(path.dirname(site), { recursive: true });
    symlinkSync(fresh("host-site"), site);
    await assert.rejects(
      link({ venvPath }),
      (e: unknown) => e instanceof EnvironmentBuildError && /leads out of the layer's venv/.test(e.message),
    );
  });
});

describe("relocation after the install", () => {
  it("does not read or write through a bin/ entry that is a symlink to a host file", async () => {
    const build = fresh("build");
    mkdirSync(path.join(build, "bin"));
    writeFileSync(decoy, `#!${build}/bin/python\n`);
    symlinkSync(decoy, path.join(build, "bin", "tool"));
    writeFileSync(path.join(build, "bin", "script"), `#!${build}/bin/python\n`);
    const changed = await relocateVenv(build, "/final");
    assert.deepEqual(changed, [path.join(build, "bin", "script")]);
    assert.equal(readFileSync(decoy, "utf8"), `#!${build}/bin/python\n`);
    assert.equal(readFileSync(path.join(build, "bin", "script"), "utf8"), "#!/final/bin/python\n");
    writeFileSync(decoy, DECOY);
  });
});

describe("the guest's command", () => {
  it("starts the recorded base interpreter with -I -S and names the venv for the bootstrap to activate, last", () => {
    const cmd = buildLaunchCommand({
      pythonPath: python.path,
      venv: { prefix: "/v/ext", systemSitePackages: true },
      modulePath: "/x",
      env: { [VENV_ENV]: '{"prefix": "/elsewhere"}' },
    });
    assert.equal(cmd.command, python.path);
    assert.deepEqual(cmd.args.slice(0, 2), ["-I", "-S"]);
    assert.ok(!cmd.args.some((a) => a.startsWith("/v/ext")), "nothing of the venv is on the command line");
    assert.deepEqual(JSON.parse(cmd.env[VENV_ENV]!), { prefix: "/v/ext", system_site_packages: true });
  });
});
