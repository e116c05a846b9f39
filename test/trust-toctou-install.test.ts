// Time-of-check/time-of-use for installs: a local package folder the install sandbox was prepared with is swapped for
// a symlink to ~/.ssh before the installer runs. The installer sees the checked folder (bwrap) or is denied (Landlock).

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, realpathSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { installCacheDir, prepareInstallSandbox } from "../src/env/install/sandbox.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import type { SandboxCapabilities } from "../src/sandbox/types.js";
import { MARKER, plantWorld, readerScript, runWithFds, SECRET_FILE, swapToSecret } from "./trust-toctou-world.js";

const PYTHON = "/usr/bin/python3";
/** The base interpreter as the host records it when it builds a venv: its real path. */
const BASE = { python: realpathSync(PYTHON), systemSitePackages: false };
let caps: SandboxCapabilities;
let venvRoot: string;
let buildDir: string;

before(async () => {
  caps = await detectSandbox();
  venvRoot = mkdtempSync(path.join(tmpdir(), "trust-toctou-install-"));
  buildDir = path.join(venvRoot, "build");
  // A bare venv as the install sandbox expects one (its pyvenv.cfg names the Python install that gets bound).
  execFileSync(PYTHON, ["-m", "venv", "--without-pip", buildDir]);
});
after(() => rmSync(venvRoot, { recursive: true, force: true }));

const why: Record<"bwrap" | "landlock", () => string | false> = {
  bwrap: () => (caps.bwrap && caps.backend.startsWith("bwrap") ? false : `bwrap cannot run here (${caps.model})`),
  landlock: () => (caps.landlockAbi >= 4 ? false : `Landlock ABI ${caps.landlockAbi} (needs 4 for network: false)`),
};

describe("an install's find-links folder swapped for a symlink to ~/.ssh after the sandbox was prepared", () => {
  for (const backend of ["bwrap", "landlock"] as const) {
    it(`${backend}: the installer reads the checked folder, never the key`, async (t) => {
      if (why[backend]()) return t.skip(why[backend]() as string);
      const world = plantWorld();
      const sandbox = await prepareInstallSandbox({
        options: { mode: "required", backend, network: false },
        installer: "pip",
        python: BASE,
        venvRoot,
        name: `toctou_${backend}`,
        buildDir,
        index: { indexUrl: null, extraIndexUrls: [], findLinks: [world.data] },
        tools: async () => [],
        hostEnv: { PATH: process.env.PATH, HOME: world.home },
        emit: () => {},
      });
      try {
        assert.ok(sandbox, "the install is confined");
        swapToSecret(world, [world.data]);
        const read = async (file: string) => {
          const r = await runWithFds(
            sandbox.wrap([PYTHON, "-I", "-S", "-c", readerScript(file)]),
            sandbox.env,
            sandbox.fds,
          );
          assert.equal(r.code, 0, r.stderr);
          return r.stdout;
        };
        assert.equal(
          await read(path.join(world.data, SECRET_FILE)),
          backend === "bwrap" ? "FileNotFoundError" : "PermissionError",
        );
        // bwrap shows the checked folder at its name; Landlock's rule holds the checked folder where it moved.
        assert.equal(
          await read(path.join(backend === "bwrap" ? world.data : `${world.data}.checked`, "marker.txt")),
          MARKER,
        );
      } finally {
        await sandbox?.dispose();
        rmSync(installCacheDir(venvRoot, `toctou_${backend}`, "pip"), { recursive: true, force: true });
        world.cleanup();
      }
    });
  }
});

describe("an install's find-links named through a symlink to ~/.ssh (resolved once, judged where it leads)", () => {
  for (const backend of ["bwrap", "landlock"] as const) {
    it(`${backend}: the source is refused with a message and the key stays out of reach`, async (t) => {
      if (why[backend]()) return t.skip(why[backend]() as string);
      const world = plantWorld();
      const messages: string[] = [];
      const links = path.join(world.root, "links");
      symlinkSync(path.relative(world.root, world.ssh), links);
      const sandbox = await prepareInstallSandbox({
        options: { mode: "required", backend, network: false },
        installer: "pip",
        python: BASE,
        venvRoot,
        name: `toctou_link_${backend}`,
        buildDir,
        index: { indexUrl: null, extraIndexUrls: [], findLinks: [links] },
        tools: async () => [],
        hostEnv: { PATH: process.env.PATH, HOME: world.home },
        emit: (e) => messages.push(e.message),
      });
      try {
        assert.ok(sandbox, "the install is confined");
        assert.ok(
          messages.some((m) => m.includes(`not exposing package source ${links}`) && m.includes(".ssh")),
          messages.join("\n"),
        );
        const r = await runWithFds(
          sandbox.wrap([PYTHON, "-I", "-S", "-c", readerScript(path.join(links, SECRET_FILE))]),
          sandbox.env,
          sandbox.fds,
        );
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, backend === "bwrap" ? "FileNotFoundError" : "PermissionError");
      } finally {
        await sandbox?.dispose();
        rmSync(installCacheDir(venvRoot, `toctou_link_${backend}`, "pip"), { recursive: true, force: true });
        world.cleanup();
      }
    });
  }
});
