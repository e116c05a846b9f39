// The env state file names its installer `installer`; one an older version wrote (`backend`) is still reused.

import assert from "node:assert/strict";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ensureEnvironment, resolvePython, type EnvironmentSpec } from "../src/env/builder.js";
import { statePath } from "../src/env/fingerprint.js";
import { tempRoot, withoutUv } from "./fixtures/env/helpers.js";

const root = tempRoot("pyisolate-tidy-installer-");
let base: Omit<EnvironmentSpec, "name">;

before(async () => {
  const python = await resolvePython(undefined);
  // No dependencies: the venv is built with pip and nothing is installed, so each build takes a second or two.
  base = {
    venvRoot: path.join(root.dir, "venvs"),
    python: python.path,
    dependencies: [],
    installer: "pip",
    runtimeVersion: "0.1.0-test",
    env: withoutUv(),
  };
});
after(() => root.remove());

function readJson(file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
}

/** Rewrites the state file as `edit` says, keeping everything else (the fingerprint with it). */
function rewriteState(name: string, edit: (state: Record<string, unknown>) => void): void {
  const file = statePath(base.venvRoot, name);
  const state = readJson(file);
  edit(state);
  writeFileSync(file, JSON.stringify(state));
}

describe("the installer in the env state file", () => {
  it("records a new venv's installer as `installer`, with `backend` gone from the file", async () => {
    const env = await ensureEnvironment({ ...base, name: "fresh" });
    assert.equal(env.installer, "pip");
    assert.equal(env.backend, "pip", "the deprecated alias carries the same value");
    const state = readJson(statePath(base.venvRoot, "fresh"));
    assert.equal(state.installer, "pip");
    assert.equal("backend" in state, false);
  });

  it("reuses a venv whose state file an older version wrote with `backend`, and reports its installer", async () => {
    const first = await ensureEnvironment({ ...base, name: "older" });
    rewriteState("older", (state) => {
      state.backend = state.installer;
      delete state.installer;
    });
    const ino = statSync(path.join(base.venvRoot, "older", "pyvenv.cfg")).ino;
    const again = await ensureEnvironment({ ...base, name: "older" });
    assert.equal(again.reused, true, "an old state file is no reason to rebuild");
    assert.equal(again.fingerprint, first.fingerprint);
    assert.equal(again.installer, "pip");
    assert.equal(statSync(path.join(base.venvRoot, "older", "pyvenv.cfg")).ino, ino, "the same venv, not a new one");
  });

  it("rebuilds a venv whose state file names no installer, or one pyisolate does not have", async () => {
    for (const [name, edit] of [
      ["none", (state: Record<string, unknown>) => delete state.installer],
      ["conda", (state: Record<string, unknown>) => (state.installer = "conda")],
      ["old-conda", (state: Record<string, unknown>) => ((state.backend = "conda"), delete state.installer)],
    ] as const) {
      await ensureEnvironment({ ...base, name });
      rewriteState(name, edit);
      const again = await ensureEnvironment({ ...base, name });
      assert.equal(again.reused, false, `${name}: a state file that is not ours is not trusted`);
      assert.equal(readJson(statePath(base.venvRoot, name)).installer, "pip", name);
    }
  });
});
