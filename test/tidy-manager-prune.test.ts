// manager.prune() on real venvs: keeps what the manager loads, what it is told to keep and what any process used
// lately; removes the rest (or lists it in a dry run); never follows a link or touches anything outside the root.

import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { statePath } from "../src/env/fingerprint.js";
import { ConfigError, type Extension, type ExtensionManager, type PruneResult } from "../src/index.js";
import { fixture, makeManager } from "./helpers.js";

const DAY = 86_400_000;

describe("manager.prune()", { timeout: 300_000 }, () => {
  const work = mkdtempSync(join(tmpdir(), "tidy-manager-prune-"));
  const root = join(work, "venvs");
  const outside = join(work, "outside");
  let manager: ExtensionManager;
  let loaded: Extension;

  /** Makes `name`'s last use (its state file's and folder's mtime) `days` ago. */
  function age(name: string, days: number): void {
    const then = new Date(Date.now() - days * DAY);
    utimesSync(statePath(root, name), then, then);
    utimesSync(join(root, name), then, then);
  }
  const names = (result: PruneResult, kind: string) =>
    result.removed
      .filter((r) => r.kind === kind)
      .map((r) => r.name)
      .sort();

  before(async () => {
    manager = makeManager({ venvRoot: root });
    for (const name of ["mp_old", "mp_recent", "mp_kept"]) {
      const ext = await manager.load({ name, modulePath: fixture("echo_ext"), sandbox: { mode: "disabled" } });
      await ext.stop();
    }
    loaded = await manager.load({ name: "mp_loaded", modulePath: fixture("echo_ext"), sandbox: { mode: "disabled" } });
    for (const name of ["mp_old", "mp_kept", "mp_loaded"]) age(name, 40);
    mkdirSync(outside);
    writeFileSync(join(outside, "precious.txt"), "the user's\n");
    symlinkSync(outside, join(root, "escape"));
    symlinkSync(outside, join(root, "mp_old", "lib", "link-out"));
    age("mp_old", 40); // the link above touched the folder's mtime
  });
  after(async () => {
    await manager.close();
    rmSync(work, { recursive: true, force: true });
  });

  test("a dry run lists the venv and state of an extension unused for 30 days, and removes nothing", async () => {
    const result = await manager.prune({ keep: ["mp_kept"], dryRun: true });
    assert.equal(result.dryRun, true);
    assert.deepEqual(names(result, "venv"), ["mp_old"]);
    assert.deepEqual(names(result, "state"), ["mp_old"]);
    assert.ok(result.bytes > 0);
    assert.ok(existsSync(join(root, "mp_old", "pyvenv.cfg")), "a dry run removes nothing");
    const recent = result.skipped.find((s) => s.path === join(root, "mp_recent"));
    assert.match(recent?.reason ?? "", /^used 0\.\d days ago, within 30$/);
    assert.ok(result.skipped.some((s) => s.path === join(root, "escape") && /symlink/.test(s.reason)));
  });

  test("removes what no loaded, kept or recently used extension needs, and nothing outside the root", async () => {
    const result = await manager.prune({ keep: ["mp_kept"] });
    assert.equal(result.dryRun, false);
    assert.deepEqual(names(result, "venv"), ["mp_old"]);
    assert.equal(existsSync(join(root, "mp_old")), false);
    assert.equal(existsSync(statePath(root, "mp_old")), false);
    for (const name of ["mp_recent", "mp_kept", "mp_loaded"])
      assert.ok(existsSync(join(root, name, "pyvenv.cfg")), name);
    assert.equal(
      readFileSync(join(outside, "precious.txt"), "utf8"),
      "the user's\n",
      "the link inside the venv was not followed",
    );
    assert.ok(existsSync(join(root, "escape")), "a symlink pyisolate did not make stays");
    assert.equal(await loaded.call("echo", ["still here"]), "still here");
  });

  test("a load that reuses a venv records the use, so an old venv loaded again is not pruned", async () => {
    age("mp_recent", 40);
    const ext = await manager.load({
      name: "mp_recent",
      modulePath: fixture("echo_ext"),
      sandbox: { mode: "disabled" },
    });
    assert.equal(ext.environment.reused, true);
    await ext.stop();
    assert.ok(Date.now() - statSync(statePath(root, "mp_recent")).mtimeMs < DAY);
    const result = await manager.prune({ dryRun: true });
    assert.deepEqual(names(result, "venv"), ["mp_kept"], "mp_kept is old and no longer kept; mp_recent was just used");
  });

  test("unusedForDays 0 lets age protect nothing; the loaded extension's venv still stays", async () => {
    const result = await manager.prune({ unusedForDays: 0, dryRun: true });
    assert.deepEqual(names(result, "venv"), ["mp_kept", "mp_recent"]);
  });

  test("refuses options that are not what they should be, naming the option", async () => {
    for (const [options, key] of [
      [{ unusedForDays: -1 }, "unusedForDays"],
      [{ unusedForDays: "7" }, "unusedForDays"],
      [{ unusedForDays: Number.NaN }, "unusedForDays"],
      [{ keep: "mp_kept" }, "keep"],
    ] as const) {
      await assert.rejects(manager.prune(options as never), (e: unknown) => e instanceof ConfigError && e.key === key);
    }
    assert.ok(existsSync(join(root, "mp_kept", "pyvenv.cfg")), "a refused call removes nothing");
  });
});
