// Time-of-check/time-of-use: a granted folder swapped for a symlink to ~/.ssh after the guard checked it and before
// the sandbox starts. The sandbox binds (bwrap) or rules (Landlock) the folder that was checked, never the new target;
// the controls show the swap does expose the key unsandboxed and to a by-name bind or rule, as the old code made.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, realpathSync, symlinkSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ConfigError, type SandboxOptions } from "../src/index.js";
import { CONFINE_EXEC_SCRIPT, RUNTIME_ROOT } from "../src/runtime-paths.js";
import { buildBwrapArgs, bwrapBinds, type BwrapPaths } from "../src/sandbox/bwrap-policy.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import {
  buildLandlockRules,
  encodeConfinementRules,
  LANDLOCK_ENV,
  landlockHostPaths,
  type LandlockPaths,
} from "../src/sandbox/landlock-policy.js";
import { guardConfigPaths } from "../src/sandbox/path-guard.js";
import { PathPins } from "../src/sandbox/pin-set.js";
import { prepareSandbox } from "../src/sandbox/prepare.js";
import { DEFAULT_SANDBOX_POLICY, type SandboxCapabilities } from "../src/sandbox/types.js";
import { fixture, makeManager } from "./helpers.js";
import {
  MARKER,
  plantWorld,
  readerScript,
  readIfThere,
  runWithFds,
  SECRET,
  SECRET_FILE,
  swapToSecret,
  type World,
} from "./trust-toctou-world.js";

const PROBE = fixture("trust_toctou_probe");
const PYTHON = "/usr/bin/python3";
const manager = makeManager();
let caps: SandboxCapabilities;

before(async () => {
  caps = await detectSandbox();
});
after(() => manager.close());

const bwrapWhy = (): string | false =>
  caps.bwrap && caps.backend.startsWith("bwrap") ? false : `bwrap cannot run here (${caps.model})`;
const landlockWhy = (): string | false =>
  caps.landlockAbi >= 4 ? false : `Landlock ABI ${caps.landlockAbi} (needs 4 to keep network: false)`;
type Outcome = [string, unknown];

/** Load the probe with `data` read-only and `wdata` writable; the swap runs from the build's last progress event. */
async function loadSwapped(world: World, name: string, sandbox: SandboxOptions) {
  let swapped = false;
  const ext = await manager.load({
    name,
    modulePath: PROBE,
    sandbox: { ...sandbox, readonlyPaths: [world.data], writablePaths: [world.wdata] },
    onProgress: (e) => {
      if (e.stage !== "done" || swapped) return;
      swapToSecret(world);
      swapped = true;
    },
  });
  assert.ok(swapped, "the swap ran after the guard's check and before the launch");
  return ext;
}

describe("a granted folder swapped for a symlink to ~/.ssh between check and launch", () => {
  it("the guard refuses the credential folder when it is named directly", async () => {
    const world = plantWorld();
    try {
      await assert.rejects(
        manager.load({
          name: "toctou_direct",
          modulePath: PROBE,
          sandbox: { mode: "disabled", readonlyPaths: [world.ssh] },
        }),
        (e: unknown) => e instanceof ConfigError && /exposes/.test(e.message) && e.key === "sandbox.readonlyPaths",
      );
    } finally {
      world.cleanup();
    }
  });

  it("control: with the sandbox disabled the swapped name reads the key and writes into ~/.ssh", async () => {
    const world = plantWorld();
    try {
      const ext = await loadSwapped(world, "toctou_none", { mode: "disabled" });
      assert.deepEqual(await ext.call("read_file", [path.join(world.data, SECRET_FILE)]), ["ok", SECRET]);
      assert.equal(((await ext.call("write_file", [path.join(world.wdata, "planted"), "x"])) as Outcome)[0], "ok");
      assert.equal(readIfThere(path.join(world.ssh, "planted")), "x");
      await ext.stop();
    } finally {
      world.cleanup();
    }
  });

  it("bwrap binds the folders that were checked: the key is not there, the checked folders are", async (t) => {
    if (bwrapWhy()) return t.skip(bwrapWhy() as string);
    const world = plantWorld();
    try {
      const ext = await loadSwapped(world, "toctou_bwrap", { backend: "bwrap" });
      assert.equal(
        ((await ext.call("read_file", [path.join(world.data, SECRET_FILE)])) as Outcome)[0],
        "FileNotFoundError",
      );
      assert.deepEqual(await ext.call("read_file", [path.join(world.data, "marker.txt")]), ["ok", MARKER]);
      assert.equal(((await ext.call("write_file", [path.join(world.wdata, "planted"), "x"])) as Outcome)[0], "ok");
      assert.equal(readIfThere(path.join(world.ssh, "planted")), undefined, "nothing written into ~/.ssh");
      assert.equal(
        readIfThere(path.join(`${world.wdata}.checked`, "planted")),
        "x",
        "the write landed in the checked folder",
      );
      assert.deepEqual(await ext.call("folder_fds"), [], "bwrap closed every pinned descriptor after its mount");
      await ext.stop();
    } finally {
      world.cleanup();
    }
  });

  it("Landlock rules the folders that were checked: the key is denied, the checked folders stay usable where they moved", async (t) => {
    if (landlockWhy()) return t.skip(landlockWhy() as string);
    const world = plantWorld();
    try {
      const ext = await loadSwapped(world, "toctou_landlock", { backend: "landlock" });
      assert.equal(
        ((await ext.call("read_file", [path.join(world.data, SECRET_FILE)])) as Outcome)[0],
        "PermissionError",
      );
      assert.equal(
        ((await ext.call("write_file", [path.join(world.wdata, "planted"), "x"])) as Outcome)[0],
        "PermissionError",
      );
      assert.equal(readIfThere(path.join(world.ssh, "planted")), undefined, "nothing written into ~/.ssh");
      // The rules hold the checked objects, not their names: they are still granted under the name they moved to.
      assert.deepEqual(await ext.call("read_file", [path.join(`${world.data}.checked`, "marker.txt")]), ["ok", MARKER]);
      assert.equal(
        ((await ext.call("write_file", [path.join(`${world.wdata}.checked`, "planted"), "y"])) as Outcome)[0],
        "ok",
      );
      assert.deepEqual(
        await ext.call("folder_fds"),
        [],
        "the guest closed every pinned descriptor before extension code ran",
      );
      await ext.stop();
    } finally {
      world.cleanup();
    }
  });
});

/** Guard `data` (pinning it), swap, then run a reader of the key confined by name (the old way) or by the pins. */
async function guardSwapRun(
  world: World,
  run: (
    pins: PathPins,
    dirs: { venv: string; ext: string; runtime: string; home: string; tmp: string },
  ) => Promise<string>,
) {
  const dirs = { venv: "v", ext: "e", runtime: "r", home: "h", tmp: "t" };
  for (const [k, v] of Object.entries(dirs)) mkdirSync((dirs[k as keyof typeof dirs] = path.join(world.root, v)));
  const pins = new PathPins();
  try {
    assert.deepEqual(await guardConfigPaths([world.data], "sandbox.readonlyPaths", { pins }), [world.data]);
    for (const d of Object.values(dirs)) pins.pin(d, "test");
    swapToSecret(world, [world.data]);
    return await run(pins, dirs);
  } finally {
    pins.close();
  }
}

describe("the same swap against a by-name bind or rule (what the sandbox did before) and against the pins", () => {
  const policy = (world: World) => ({ ...DEFAULT_SANDBOX_POLICY, readonlyPaths: [world.data] });
  const reader = (world: World) => [PYTHON, "-I", "-S", "-c", readerScript(path.join(world.data, SECRET_FILE))];

  for (const pinned of [false, true]) {
    it(`bwrap ${pinned ? "with --ro-bind-fd shows the checked folder" : "with --ro-bind by name (control) shows the key"}`, async (t) => {
      if (bwrapWhy()) return t.skip(bwrapWhy() as string);
      const world = plantWorld();
      try {
        const out = await guardSwapRun(world, async (pins, d) => {
          const paths: BwrapPaths = {
            pythonInstall: "/usr",
            venv: d.venv,
            extensionDir: d.ext,
            runtimeDir: d.runtime,
            home: d.home,
          };
          const child = pins.forChild(Object.values(bwrapBinds(policy(world), paths)).flat());
          const args = buildBwrapArgs(
            policy(world),
            pinned ? { ...paths, pinned: child.childFd } : paths,
            caps.namespaces,
          );
          const r = await runWithFds(
            [caps.bwrap!.path, ...args, "--", ...reader(world)],
            {},
            pinned ? child.hostFds : [],
          );
          assert.equal(r.code, 0, r.stderr);
          return r.stdout;
        });
        assert.equal(out, pinned ? "FileNotFoundError" : SECRET);
      } finally {
        world.cleanup();
      }
    });

    it(`Landlock ${pinned ? "on inherited descriptors denies the key" : "rules by name (control) grant the key"}`, async (t) => {
      if (landlockWhy()) return t.skip(landlockWhy() as string);
      const world = plantWorld();
      try {
        const out = await guardSwapRun(world, async (pins, d) => {
          const paths: LandlockPaths = {
            pythonInstall: [],
            venv: d.venv,
            extensionDir: d.ext,
            runtimeDir: d.runtime,
            home: d.home,
            tmpdir: d.tmp,
          };
          const child = pins.forChild(landlockHostPaths(policy(world), paths));
          const rules = buildLandlockRules(policy(world), pinned ? { ...paths, pinned: child.childFd } : paths);
          const env = { [LANDLOCK_ENV]: encodeConfinementRules(rules, {}) };
          const r = await runWithFds(
            [PYTHON, "-I", "-S", CONFINE_EXEC_SCRIPT, "--", ...reader(world)],
            env,
            pinned ? child.hostFds : [],
          );
          assert.equal(r.code, 0, r.stderr);
          return r.stdout;
        });
        assert.equal(out, pinned ? "PermissionError" : SECRET);
      } finally {
        world.cleanup();
      }
    });
  }
});

describe("a Python install reached through a symlinked spelling (a venv made by an alias of its prefix)", () => {
  it("bwrap binds the recorded interpreter's real prefix from a descriptor, never the alias, and the interpreter starts", async (t) => {
    if (bwrapWhy()) return t.skip(bwrapWhy() as string);
    const prefix = realpathSync(
      execFileSync("python3", ["-I", "-S", "-c", "import sys; print(sys.base_prefix)"], { encoding: "utf8" }).trim(),
    );
    if (prefix === "/usr" || prefix.startsWith("/usr/"))
      return t.skip(`python3's prefix ${prefix} is under /usr, bound with the system: no second name to bind`);
    const world = plantWorld();
    const pins = new PathPins();
    try {
      const alias = path.join(world.root, "alias");
      symlinkSync(prefix, alias);
      execFileSync(path.join(alias, "bin", "python3"), ["-m", "venv", "--without-pip", path.join(world.root, "venv")]);
      for (const d of ["e", "h", "t"]) mkdirSync(path.join(world.root, d));
      // The host records the base interpreter by its real path when it builds the venv, whatever spelling made it.
      const prepared = await prepareSandbox({
        backend: "bwrap",
        capabilities: caps,
        policy: { ...DEFAULT_SANDBOX_POLICY },
        pins,
        venv: path.join(world.root, "venv"),
        pythonPath: realpathSync(path.join(alias, "bin", "python3")),
        systemSitePackages: false,
        modulePath: path.join(world.root, "e"),
        runtimeDir: RUNTIME_ROOT,
        home: path.join(world.root, "h"),
        tmpdir: path.join(world.root, "t"),
      });
      const launch = prepared.launch as Extract<typeof prepared.launch, { backend: "bwrap" | "bwrap-degraded" }>;
      const fdOf = (dest: string) => launch.bwrapArgs[launch.bwrapArgs.indexOf(dest) - 1];
      assert.notEqual(fdOf(prefix), undefined);
      assert.equal(launch.bwrapArgs.includes(alias), false, "the alias the venv was made through is not bound");
      const argv = [
        launch.bwrapPath,
        ...launch.bwrapArgs,
        "--",
        prepared.pythonPath,
        "-I",
        "-S",
        "-c",
        "print('started')",
      ];
      const r = await runWithFds(argv, {}, launch.fds);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), "started");
    } finally {
      pins.close();
      world.cleanup();
    }
  });
});
