// Two loads of one extension, again and again for 2 s, while another process flips a granted folder between a real
// folder and a symlink to ~/.ssh: every load either refuses (a ConfigError, or bwrap's own check of the descriptor it
// binds) or runs on the real folder; none ever reads the key. A race, so the deterministic cases are in trust-toctou.test.ts; this one is the attack as seen.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ConfigError, ExtensionLoadError, type SandboxOptions } from "../src/index.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import type { SandboxCapabilities } from "../src/sandbox/types.js";
import { fixture, makeManager } from "./helpers.js";
import { MARKER, plantWorld, SECRET, SECRET_FILE, type World } from "./trust-toctou-world.js";

const PROBE = fixture("trust_toctou_probe");
const FLIP_MS = 2000;
/** Renames, never a gap in the name for long: a real folder for 10 ms, the symlink to ~/.ssh for 3 ms. */
const FLIPPER = `
import os, sys, time
os.chdir(sys.argv[1])
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    os.rename("flip", "flip.dir"); os.rename("flip.link", "flip"); time.sleep(0.003)
    os.rename("flip", "flip.link"); os.rename("flip.dir", "flip"); time.sleep(0.010)
`;

const manager = makeManager();
let caps: SandboxCapabilities;
before(async () => {
  caps = await detectSandbox();
});
after(() => manager.close());

/**
 * bwrap 0.8 cannot mount a descriptor from another user namespace: it binds the name the descriptor has now and then
 * compares the mount with the descriptor, so a flip in that moment fails the launch (closed, never open). Which step
 * meets the flip decides bwrap's words: the comparison, the type check, the lookup of /proc/self/fd/N's name while
 * the folder is moved away, or the mount itself.
 */
const BWRAP_RACE =
  /bwrap: (Race condition binding dirfd|Can't get type of source|Can't find source path \/proc\/self\/fd\/\d+|Can't bind mount )/;

interface Tally {
  ran: number;
  refused: number;
  bwrapRefused: number;
  sawSecret: number;
  other: string[];
}

/** One loader: load, read the key and the marker through the flipping name, stop; until the flipper is done. */
async function loader(world: World, name: string, sandbox: SandboxOptions, until: number, tally: Tally): Promise<void> {
  const flip = path.join(world.root, "flip");
  while (Date.now() < until) {
    let ext;
    try {
      ext = await manager.load({ name, modulePath: PROBE, sandbox: { ...sandbox, readonlyPaths: [flip] } });
    } catch (error) {
      if (error instanceof ConfigError) tally.refused++;
      else if (error instanceof ExtensionLoadError && BWRAP_RACE.test(error.message)) tally.bwrapRefused++;
      else tally.other.push(String(error));
      continue;
    }
    try {
      tally.ran++;
      for (const file of [path.join(flip, SECRET_FILE), path.join(flip, "marker.txt")]) {
        const [kind, value] = (await ext.call("read_file", [file])) as [string, unknown];
        if (kind === "ok" && value === SECRET) tally.sawSecret++;
        else if (kind === "ok" && value !== MARKER) tally.other.push(`read ${file}: ${String(value)}`);
      }
    } finally {
      await ext.stop();
    }
  }
}

function flipper(world: World): Promise<number | null> {
  const child = spawn("/usr/bin/python3", ["-I", "-S", "-c", FLIPPER, world.root, String(FLIP_MS / 1000)], {
    stdio: "ignore",
  });
  return new Promise((resolve) => child.once("close", resolve));
}

describe("two loads while a granted folder flips between itself and a symlink to ~/.ssh", () => {
  const backends: Record<string, () => string | false> = {
    bwrap: () => (caps.bwrap && caps.backend.startsWith("bwrap") ? false : `bwrap cannot run here (${caps.model})`),
    landlock: () =>
      caps.landlockAbi >= 4 ? false : `Landlock ABI ${caps.landlockAbi} (needs 4 to keep network: false)`,
  };
  for (const [backend, why] of Object.entries(backends)) {
    it(`${backend}: no load ever reads the key`, async (t) => {
      if (why()) return t.skip(why() as string);
      const world = plantWorld();
      try {
        const flip = path.join(world.root, "flip");
        mkdirSync(flip);
        writeFileSync(path.join(flip, "marker.txt"), MARKER);
        symlinkSync(path.relative(world.root, world.ssh), `${flip}.link`);
        const sandbox = { backend: backend as "bwrap" | "landlock" };
        const names = [`toctou_flip_a_${backend}`, `toctou_flip_b_${backend}`];
        // Build both venvs before the clock starts: the race is between the guard and the launch, not the build.
        for (const name of names) await (await manager.load({ name, modulePath: PROBE, sandbox })).stop();
        const tally: Tally = { ran: 0, refused: 0, bwrapRefused: 0, sawSecret: 0, other: [] };
        const until = Date.now() + FLIP_MS;
        const [code] = await Promise.all([
          flipper(world),
          ...names.map((n) => loader(world, n, sandbox, until, tally)),
        ]);
        t.diagnostic(
          `${backend}: ${tally.ran} loads ran, ${tally.refused} refused with a ConfigError, ${tally.bwrapRefused} stopped by bwrap's own check, ${tally.sawSecret} read the key`,
        );
        assert.equal(code, 0, "the flipper ran to the end");
        assert.equal(tally.sawSecret, 0, "a load read the key through the flipped name");
        assert.deepEqual(
          tally.other,
          [],
          "every failure is a ConfigError or bwrap's race check, every read the marker or a refusal",
        );
        const attempts = tally.ran + tally.refused + tally.bwrapRefused;
        assert.ok(attempts >= 4, `the loads raced the flipper (${attempts} attempts)`);
      } finally {
        world.cleanup();
      }
    });
  }
});
