// A malicious sdist (an in-tree PEP 517 backend) attacks the host while it is built; the bwrap install sandbox contains it.

import assert from "node:assert/strict";
import { existsSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { findUv, resolvePython, type EnvironmentSpec } from "../src/env/builder.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import {
  attackEnv,
  assertNoLeak,
  buildEvil,
  setUpAttack,
  type AttackScene,
  type EvilBuild,
} from "./fixtures/env/evil-sdist.js";
import { fixtureIndex, tempRoot } from "./fixtures/env/helpers.js";

const caps = await detectSandbox();
const bwrapOk = caps.bwrap !== undefined && (caps.backend === "bwrap" || caps.backend === "bwrap-degraded");
const skip = bwrapOk
  ? false
  : `bwrap cannot run here (model ${caps.model}): ${caps.gaps.map((g) => g.problem).join("; ")}`;
const uv = await findUv();
const root = tempRoot("pyisolate-env-attack-");
let scene: AttackScene;
let base: Omit<EnvironmentSpec, "name" | "dependencies" | "installer">;

before(async () => {
  if (skip) return;
  scene = await setUpAttack(root.dir);
  const index = fixtureIndex(path.join(root.dir, "index"), ["1.0"]);
  const python = await resolvePython(undefined);
  const env = attackEnv(scene, root.dir);
  base = {
    venvRoot: path.join(root.dir, "venvs"),
    python: python.path,
    indexUrl: index.indexUrl,
    findLinks: [scene.sdists],
    runtimeVersion: "0.1.0-test",
    env,
  };
});
after(() => {
  scene?.close();
  root.remove();
});

function assertContained(r: EvilBuild, network: boolean): void {
  const { e, loot } = r;
  assert.equal(e.installSandbox, caps.backend);
  assert.equal((loot.secret as string[])[0], "FileNotFoundError", `secret: ${JSON.stringify(loot.secret)}`);
  // The home may exist inside only as the path to a Python install under it (pyenv's); the secret's folder never shows.
  const listed = (loot.list_home as [string, unknown])[0] === "ok" ? (loot.list_home as [string, string[]])[1] : [];
  assert.ok(!listed.includes(path.basename(scene.secretDir)), `home: ${JSON.stringify(loot.list_home)}`);
  const viaPython = path.relative(homedir(), base.python!).split(path.sep)[0];
  assert.ok(
    listed.every((n) => n === viaPython),
    `home: ${JSON.stringify(loot.list_home)}`,
  );
  assert.equal(loot.home, "/tmp/home");
  assert.equal((loot.pwn0 as string[])[0], "ok", "the write lands in the sandbox's private /tmp");
  assert.ok(!existsSync(scene.pwnTmp), "nothing was planted in the host's /tmp");
  assert.notEqual((loot.pwn1 as string[])[0], "ok", `write into the host's home: ${JSON.stringify(loot.pwn1)}`);
  assert.ok(!existsSync(scene.pwnHome), "nothing was planted in the host's home");
  assert.equal(
    (loot.phone as string[])[0],
    network ? "ok" : "ConnectionRefusedError",
    `phone home: ${JSON.stringify(loot.phone)}`,
  );
  assertNoLeak(scene, r, base.venvRoot);
}

describe("malicious sdist", { skip }, () => {
  it("control: unconfined, the build reads the secret, plants files in /tmp and the home, and phones home", async () => {
    const r = await buildEvil(scene, base, "evil-control", "pip", { mode: "disabled" });
    assert.equal(r.e.installSandbox, "none");
    assert.deepEqual(r.loot.secret, ["ok", scene.secret]);
    assert.equal(r.loot.env, scene.secret);
    assert.ok(existsSync(scene.pwnTmp) && existsSync(scene.pwnHome), "both files were planted");
    assert.ok(scene.received().includes(scene.secret), "the secret reached the server");
    rmSync(scene.pwnTmp, { force: true });
    rmSync(scene.pwnHome, { force: true });
  });

  it("pip in the sandbox: the build runs and the install succeeds, but the secret, the host's files and env are out of reach", async () => {
    assertContained(await buildEvil(scene, base, "evil-pip", "pip", { mode: "required", backend: "bwrap" }), true);
  });

  it("pip in the sandbox without network: the phone-home connection is refused too", async () => {
    assertContained(
      await buildEvil(scene, base, "evil-pip-offline", "pip", { mode: "required", backend: "bwrap", network: false }),
      false,
    );
  });

  it("uv in the sandbox: the same attack is contained", { skip: uv ? false : "uv is not on PATH" }, async () => {
    assertContained(await buildEvil(scene, base, "evil-uv", "uv", { mode: "required", backend: "bwrap" }), true);
  });
});
