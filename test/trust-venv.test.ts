// Install code plants a replaced bin/python, a pyvenv.cfg naming /etc/passwd and /, a .pth and symlinks at the
// host's state paths; under bwrap and Landlock the host runs none of it, binds no `/`, writes through no symlink.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, lstatSync, readFileSync, readlinkSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { findUv, resolvePython } from "../src/env/builder.js";
import { statePath } from "../src/env/fingerprint.js";
import { pyvenvCfgText } from "../src/env/layout.js";
import { sitePackagesOf } from "../src/env/shared-runtime.js";
import type { Extension } from "../src/index.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import { resolvePythonInstall } from "../src/sandbox/host.js";
import { dangerReason } from "../src/sandbox/path-guard.js";
import { tempRoot } from "./fixtures/env/helpers.js";
import { EVIL_PYVENV_CFG, makeTrustVenvSdist, PACKAGE } from "./fixtures/env/trust-venv-sdist.js";
import { fixture, makeManager } from "./helpers.js";

const caps = await detectSandbox();
const bwrapSkip =
  caps.bwrap !== undefined && caps.backend.startsWith("bwrap") ? false : `bwrap cannot run here (model ${caps.model})`;
const landlockSkip = caps.landlockAbi > 0 ? false : "Landlock is not available on this kernel";
const uv = await findUv();
const uvSkip = uv ? false : "uv is not on PATH";
const python = await resolvePython(undefined);
const root = tempRoot("pyisolate-trust-venv-");
const venvRoot = path.join(root.dir, "venvs");
const marker = path.join(root.dir, "marker.txt");
const decoy = path.join(root.dir, "host-file.txt");
const secret = path.join(root.dir, "secret.txt");
const DECOY = "the host's own file\n";
const SECRET = "the host's secret\n";
const sdists = path.join(root.dir, "sdists");
const manager = makeManager({ venvRoot });

before(() => {
  writeFileSync(decoy, DECOY);
  writeFileSync(secret, SECRET);
  makeTrustVenvSdist(root.dir, sdists, { marker, decoy, venvRoot, hostPid: process.pid, realPython: python.path });
});
after(async () => {
  await manager.close();
  root.remove();
});

interface Probe {
  value: string;
  loot: string;
  secret: [string, string];
  passwd: string;
  prefix: string;
  executable: string;
  base: string;
}

/** The host's environment: no PYISOLATE_CHILD, as the old host's own probes ran. */
const hostEnv = (): NodeJS.ProcessEnv =>
  Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== "PYISOLATE_CHILD"));
const markerText = (): string => (existsSync(marker) ? readFileSync(marker, "utf8") : "");

async function loadHostile(
  name: string,
  backend: "pip" | "uv",
  sandbox: object,
): Promise<{ ext: Extension; probe: Probe; venv: string }> {
  const ext = await manager.load({
    name,
    modulePath: fixture("trust_venv_probe"),
    python: python.path,
    installer: backend,
    dependencies: ["pyisolate-trustvenv==1.0"],
    indexUrl: `file://${path.join(root.dir, "no-index")}`,
    findLinks: [sdists],
    sandbox,
  });
  const probe = (await ext.call("probe", [secret])) as Probe;
  return { ext, probe, venv: path.join(venvRoot, name) };
}

/** What the install really planted (the attack is live): the .pth and the payload copies, and, where the build found its venv, bin/python and the symlinks. */
function assertPlanted(venv: string, loot: Record<string, [string, unknown]>): string[] {
  const site = sitePackagesOf(venv, python.version);
  assert.ok(existsSync(path.join(site, `${PACKAGE}_evil.pth`)), "the .pth was installed");
  assert.equal(
    readFileSync(path.join(venv, "pyisolate-planted", "pyvenv.cfg"), "utf8"),
    EVIL_PYVENV_CFG,
    "data files reach the venv's root",
  );
  const dirs = (loot.build_dirs as unknown as string[]) ?? [];
  for (const d of dirs) {
    assert.equal(loot[`python:${d}`]?.[0], "ok", `bin/python was replaced during the build: ${JSON.stringify(loot)}`);
    assert.equal(loot[`old_tmp:${d}`]?.[0], "ok", `the old temp path was planted: ${JSON.stringify(loot)}`);
    assert.equal(
      readlinkSync(path.join(venv, `.pyisolate-env.json.${process.pid}.tmp`)),
      decoy,
      "the planted symlink is still there",
    );
  }
  return dirs;
}

/** The host's side held: its own links and pyvenv.cfg, its state a regular file, the host file and the marker untouched. */
function assertHostHeld(name: string, venv: string, backend: "pip" | "uv"): void {
  assert.equal(
    readlinkSync(path.join(venv, "bin", "python")),
    python.path,
    "bin/python is the host's link to the recorded interpreter",
  );
  assert.equal(
    readFileSync(path.join(venv, "pyvenv.cfg"), "utf8"),
    pyvenvCfgText({ python, systemSitePackages: false, relocatable: backend === "uv" }),
  );
  const state = lstatSync(statePath(venvRoot, name));
  assert.ok(state.isFile() && !state.isSymbolicLink(), "the state file is the host's regular file");
  assert.equal(readFileSync(decoy, "utf8"), DECOY, "the host file behind the planted symlinks is unchanged");
}

function assertConfinedProbe(probe: Probe, venv: string): void {
  assert.equal(probe.value, "trust-venv works", "the extension still works");
  assert.notEqual(
    probe.secret[0],
    "ok",
    `the planted secret is out of reach (no "/" bound): ${JSON.stringify(probe.secret)}`,
  );
  assert.notEqual(probe.passwd, "ok", "/etc/passwd is not readable: pyvenv.cfg's executable was not bound");
  assert.equal(probe.prefix, realpathSync(venv), "the guest activated the venv itself");
  assert.equal(probe.executable, path.join(realpathSync(venv), "bin", "python"), "subprocesses get the venv's python");
  assert.equal(probe.base, python.path, "the guest runs the recorded base interpreter");
}

const CASES = [
  { backend: "pip" as const, sandbox: "bwrap" as const, skip: bwrapSkip },
  { backend: "pip" as const, sandbox: "landlock" as const, skip: landlockSkip },
  { backend: "uv" as const, sandbox: "bwrap" as const, skip: uvSkip || bwrapSkip },
  { backend: "uv" as const, sandbox: "landlock" as const, skip: uvSkip || landlockSkip },
];

describe("a hostile install's planted files, for real", { timeout: 600_000 }, () => {
  for (const c of CASES) {
    it(
      `${c.backend} under ${c.sandbox}: the host runs no planted file, binds no "/", writes through no symlink, and the extension works`,
      { skip: c.skip },
      async () => {
        const name = `tv-${c.backend}-${c.sandbox}`;
        const { ext, probe, venv } = await loadHostile(name, c.backend, { backend: c.sandbox });
        const loot = JSON.parse(probe.loot) as Record<string, [string, unknown]>;
        const dirs = assertPlanted(venv, loot);
        if (c.backend === "pip")
          assert.equal(dirs.length, 1, `pip's build found the venv it was building: ${probe.loot}`);
        // The host-owned state folder is not the build's to write: Landlock refuses it (bwrap shows the build a private /tmp,
        // where its symlink lands harmlessly; assertHostHeld checks the host's state file).
        if (c.sandbox === "landlock" && dirs.length > 0)
          assert.notEqual(loot[`new_state:${name}`]?.[0], "ok", probe.loot);
        assertHostHeld(name, venv, c.backend);
        assertConfinedProbe(probe, venv);
        assert.equal(markerText(), "", "neither the planted bin/python nor the .pth ran outside the sandbox");
        await ext.stop();
        // Reused without running anything of the venv's (a spawn-free check of the host's links).
        const again = await manager.load({
          name,
          modulePath: fixture("trust_venv_probe"),
          python: python.path,
          installer: c.backend,
          dependencies: ["pyisolate-trustvenv==1.0"],
          indexUrl: `file://${path.join(root.dir, "no-index")}`,
          findLinks: [sdists],
          sandbox: { backend: c.sandbox },
        });
        assert.equal(again.environment.reused, true);
        assertConfinedProbe((await again.call("probe", [secret])) as Probe, venv);
        await again.stop();
        assert.equal(markerText(), "");
        assert.equal(readFileSync(decoy, "utf8"), DECOY);
      },
    );
  }

  it("control: unconfined, the same files are live: the guest runs the .pth and reads the secret, and the old host paths would have run or followed each", async () => {
    const name = "tv-control";
    const { ext, probe, venv } = await loadHostile(name, "pip", { mode: "disabled" });
    const loot = JSON.parse(probe.loot) as Record<string, [string, unknown]>;
    assert.equal(assertPlanted(venv, loot).length, 1);
    assert.equal(
      loot[`new_state:${name}`]?.[0],
      "ok",
      "unconfined, the build planted a symlink at the host's state path too",
    );
    assertHostHeld(name, venv, "pip");
    assert.deepEqual(probe.secret, ["ok", SECRET], "unconfined, the extension reads the planted secret");
    assert.match(markerText(), /^pth ran: child=1$/m, "the .pth is live code: the unconfined guest ran it");
    // Unconfined, pip itself went on to run the replaced bin/python after the build planted it: install code on the host.
    assert.match(markerText(), /^bin\/python ran: child=host$/m, "the unconfined install ran the planted bin/python");
    await ext.stop();
    rmSync(marker);

    // The old host: fullCheck ran the venv's python with site (the .pth ran on the host) ...
    execFileSync(path.join(venv, "bin", "python"), ["-c", "import sys"], { env: hostEnv() });
    assert.match(markerText(), /^pth ran: child=host$/m, "the old fullCheck command runs the .pth on the host");
    // ... and launched bin/python, which the build had replaced by this script ...
    execFileSync(path.join(venv, "pyisolate-planted", "python"), ["-c", "import sys"], { env: hostEnv() });
    assert.match(markerText(), /^bin\/python ran: child=host$/m, "the planted bin/python runs whatever it likes");
    // ... and bound the prefix above pyvenv.cfg's `executable`, which the install rewrote ...
    const executable = /^executable = (.*)$/m.exec(EVIL_PYVENV_CFG)![1]!;
    const oldBound = path.dirname(path.dirname(realpathSync(executable)));
    assert.equal(oldBound, "/");
    assert.ok(dangerReason(oldBound), "the old derivation bound all of /");
    assert.deepEqual(await resolvePythonInstall({ python: python.path, systemSitePackages: false }), [
      path.dirname(path.dirname(python.path)),
    ]);
    // ... and wrote its state's temp file by name, through the planted symlink.
    writeFileSync(path.join(venv, `.pyisolate-env.json.${process.pid}.tmp`), "{}");
    assert.equal(readFileSync(decoy, "utf8"), "{}", "a write by the old temp name lands in the host file");
    writeFileSync(decoy, DECOY);
    rmSync(marker, { force: true });
  });
});
