// Pinning one host path: opened once without following a final symlink, proved to be the object at the checked path,
// and every policy builder given pins binds or rules only descriptors.

import assert from "node:assert/strict";
import { closeSync, fstatSync, mkdirSync, renameSync, statSync, symlinkSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { ConfigError } from "../src/errors.js";
import { buildBwrapArgs } from "../src/sandbox/bwrap-policy.js";
import { buildLandlockRules, encodeLandlockRules } from "../src/sandbox/landlock-policy.js";
import { ensureDirPinned, FIRST_PINNED_FD, pinPath } from "../src/sandbox/pin.js";
import { PathPins } from "../src/sandbox/pin-set.js";
import { DEFAULT_SANDBOX_POLICY } from "../src/sandbox/types.js";
import { plantWorld, readIfThere } from "./trust-toctou-world.js";

const isConfigError = (key: string, pattern: RegExp) => (e: unknown) =>
  e instanceof ConfigError && e.key === key && pattern.test(e.message);

describe("pinPath", () => {
  it("holds the checked folder itself: after a swap the descriptor is still the original object", () => {
    const world = plantWorld();
    try {
      const before = statSync(world.data);
      const pinned = pinPath(world.data, "sandbox.readonlyPaths");
      renameSync(world.data, `${world.data}.checked`);
      symlinkSync("home/.ssh", world.data);
      const now = fstatSync(pinned.fd);
      assert.deepEqual([now.dev, now.ino], [before.dev, before.ino]);
      assert.deepEqual([pinned.dev, pinned.ino, pinned.directory], [before.dev, before.ino, true]);
      closeSync(pinned.fd);
    } finally {
      world.cleanup();
    }
  });

  it("refuses a path whose final component is a symlink now, naming the key", () => {
    const world = plantWorld();
    try {
      renameSync(world.data, `${world.data}.checked`);
      symlinkSync("home/.ssh", world.data);
      assert.throws(
        () => pinPath(world.data, "sandbox.readonlyPaths"),
        isConfigError("sandbox.readonlyPaths", /is a symlink now/),
      );
    } finally {
      world.cleanup();
    }
  });

  it("refuses a path a parent of which became a symlink after the check: the object it reaches is elsewhere", () => {
    const world = plantWorld();
    try {
      mkdirSync(path.join(world.root, "parent", "inner"), { recursive: true });
      mkdirSync(path.join(world.ssh, "inner"));
      const checked = path.join(world.root, "parent", "inner");
      renameSync(path.join(world.root, "parent"), path.join(world.root, "parent.checked"));
      symlinkSync("home/.ssh", path.join(world.root, "parent"));
      assert.throws(
        () => pinPath(checked, "sandbox.writablePaths"),
        isConfigError("sandbox.writablePaths", /changed after it was checked: it now leads to .*\.ssh/),
      );
    } finally {
      world.cleanup();
    }
  });
});

describe("ensureDirPinned", () => {
  it("creates a missing writable folder inside its pinned parent", () => {
    const world = plantWorld();
    try {
      const target = path.join(world.root, "new", "deeper");
      const pinned = ensureDirPinned(target, "sandbox.writablePaths");
      assert.equal(pinned.path, target);
      assert.ok(statSync(target).isDirectory());
      closeSync(pinned.fd);
    } finally {
      world.cleanup();
    }
  });

  it("never creates anything through a parent swapped for a symlink", () => {
    const world = plantWorld();
    try {
      const target = path.join(world.root, "parent", "made");
      symlinkSync("home/.ssh", path.join(world.root, "parent"));
      assert.throws(
        () => ensureDirPinned(target, "sandbox.writablePaths"),
        isConfigError("sandbox.writablePaths", /symlink now/),
      );
      assert.equal(readIfThere(path.join(world.ssh, "made")), undefined);
      assert.throws(() => statSync(path.join(world.ssh, "made")), /ENOENT/, "no folder was made in ~/.ssh");
    } finally {
      world.cleanup();
    }
  });
});

describe("PathPins and the builders", () => {
  const policy = { ...DEFAULT_SANDBOX_POLICY, writablePaths: ["/w"], readonlyPaths: ["/r"] };
  const paths = { pythonInstall: ["/py"], venv: "/v", extensionDir: "/e", runtimeDir: "/rt", home: "/h", tmpdir: "/t" };

  it("numbers descriptors from fd 6, one per name (two names of one object get two), and refuses a path never pinned", () => {
    const world = plantWorld();
    const pins = new PathPins();
    try {
      pins.pin(world.data, "a");
      pins.pin(world.wdata, "b");
      const child = pins.forChild([world.data, world.wdata, world.data]);
      assert.deepEqual(child.childFd, { [world.data]: FIRST_PINNED_FD, [world.wdata]: FIRST_PINNED_FD + 1 });
      assert.equal(child.hostFds.length, 2);
      assert.throws(() => pins.forChild([world.ssh]), /without having been pinned/);
      // A second name of one object (bound twice by bwrap, which closes each descriptor after its mount) gets its own.
      symlinkSync("data", path.join(world.root, "spelling"));
      pins.pinSpelling(path.join(world.root, "spelling"), "python");
      const two = pins.forChild([world.data, path.join(world.root, "spelling")]);
      assert.deepEqual(Object.values(two.childFd), [FIRST_PINNED_FD, FIRST_PINNED_FD + 1]);
      assert.deepEqual(
        two.hostFds.map((fd) => fstatSync(fd).ino),
        [statSync(world.data).ino, statSync(world.data).ino],
      );
    } finally {
      pins.close();
      world.cleanup();
    }
  });

  it("bwrap: with pins every host folder is bound by descriptor; a path without one is an error, never a by-name bind", () => {
    const pinned = { "/py": 5, "/v": 6, "/e": 7, "/rt": 8, "/h": 9, "/w": 10, "/r": 11 };
    const args = buildBwrapArgs(policy, { ...paths, pythonInstall: "/py", pinned });
    for (const [p, fd] of Object.entries(pinned)) {
      const at = args.indexOf(p);
      assert.match(args[at - 2]!, /^--(ro-)?bind-fd$/, p);
      assert.equal(args[at - 1], String(fd), p);
    }
    assert.ok(
      !args.some((a, i) => (a === "--bind" || a === "--ro-bind") && Object.keys(pinned).includes(args[i + 1]!)),
    );
    const { "/r": _dropped, ...without } = pinned;
    assert.throws(
      () => buildBwrapArgs(policy, { ...paths, pythonInstall: "/py", pinned: without }),
      /\/r would be bound by name/,
    );
  });

  it("Landlock: the rules name descriptor numbers for pinned paths and names only for fixed system paths", () => {
    const pinned = { "/py": 5, "/v": 6, "/e": 7, "/rt": 8, "/h": 9, "/t": 10, "/w": 11, "/r": 12 };
    const json = JSON.parse(encodeLandlockRules(buildLandlockRules(policy, { ...paths, pinned }))) as {
      read_only: unknown[];
      writable: unknown[];
    };
    assert.deepEqual(
      json.read_only.filter((p) => typeof p === "number"),
      [5, 6, 8, 7, 12],
    );
    assert.deepEqual(
      json.writable.filter((p) => typeof p === "number"),
      [9, 10, 11],
    );
    assert.ok(
      !["/py", "/v", "/e", "/rt", "/h", "/t", "/w", "/r"].some((p) =>
        [...json.read_only, ...json.writable].includes(p),
      ),
    );
    assert.throws(
      () => buildLandlockRules(policy, { ...paths, pinned: { ...pinned, "/t": undefined as unknown as number } }),
      /\/t would be ruled by name/,
    );
  });
});
