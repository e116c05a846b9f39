// Private HOME/tmp folders of a host killed by SIGKILL are reclaimed by the next host, and nothing that is not provably
// ours (no marker, a live host's, a symlink, another uid's, a link inside) is removed or followed.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  formatMarker,
  ownerIsDead,
  parseMarker,
  reclaimPrivateDirs,
  selfIdentity,
  type HostIdentity,
} from "../src/lifecycle/private-dirs.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import type { SandboxCapabilities } from "../src/sandbox/types.js";
import { fixture, isAlive, makeManager, SHARED_VENV_ROOT, TEST_DIR, waitFor } from "./helpers.js";
import { SANDBOX_MODES, unavailableMode } from "./sandbox-modes.js";

const ME: HostIdentity = { pid: 100, startTicks: "5000", pidNamespace: "pid:[4026531836]" };

describe("the private folders' marker (pure)", () => {
  it("round-trips and refuses anything not in its exact format", () => {
    assert.deepEqual(parseMarker(formatMarker(ME)), ME);
    for (const bad of [
      "",
      "pyisolate-host 100 5000 pid:[1]",
      "pyisolate-host 0 5000 pid:[1]\n",
      "pyisolate-host 1 x pid:[1]\n",
      "pyisolate-host 1 2 /etc\n",
    ]) {
      assert.equal(parseMarker(bad), undefined, JSON.stringify(bad));
    }
  });

  it("calls an owner dead only when its pid is gone or reused, in our pid namespace, and never ourselves", () => {
    const owner = { ...ME, pid: 200 };
    assert.equal(ownerIsDead(owner, ME, undefined), true, "no such process");
    assert.equal(ownerIsDead(owner, ME, "9999"), true, "the pid now names a process started at another time");
    assert.equal(ownerIsDead(owner, ME, "5000"), false, "the same process: alive");
    assert.equal(
      ownerIsDead({ ...owner, pidNamespace: "pid:[1]" }, ME, undefined),
      false,
      "another pid namespace's pid means nothing here",
    );
    assert.equal(ownerIsDead(ME, ME, undefined), false, "our own");
  });
});

let caps: SandboxCapabilities;
let self: HostIdentity;
const scratch = mkdtempSync(join(tmpdir(), "res-res-dirs-"));
before(async () => {
  caps = await detectSandbox();
  self = (await selfIdentity())!;
});

/** Starts a host in its own process with TMPDIR = `dir`, loads one extension, and returns the host and the extension's pid. */
async function startHost(
  dir: string,
  name: string,
  sandbox: object,
): Promise<{ host: ReturnType<typeof spawn>; extPid: number }> {
  const script = `
    import { ExtensionManager } from ${JSON.stringify(new URL("../src/index.ts", import.meta.url).href)};
    const m = new ExtensionManager({ venvRoot: ${JSON.stringify(SHARED_VENV_ROOT)}, forwardOutput: false });
    const e = await m.load({ name: ${JSON.stringify(name)}, modulePath: ${JSON.stringify(fixture("res_res_kill"))}, sandbox: ${JSON.stringify(sandbox)} });
    console.log(e.pid);
    setInterval(() => {}, 1000);`;
  const host = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    cwd: TEST_DIR,
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, TMPDIR: dir },
  });
  const [chunk] = (await once(host.stdout!, "data")) as [Buffer];
  return { host, extPid: Number(chunk.toString().trim()) };
}

const foldersOf = (dir: string, name: string) =>
  readdirSync(dir)
    .filter((e) => e.startsWith(`pyisolate-${name}-`))
    .map((e) => join(dir, e));

describe("a host killed by SIGKILL with an extension running", () => {
  after(() => rmSync(scratch, { recursive: true, force: true }));

  for (const mode of SANDBOX_MODES) {
    it(`leaves its folder marked with its pid, and the next host removes it (${mode.label})`, async (t) => {
      const skip = unavailableMode(caps, mode.sandbox);
      if (skip) return t.skip(skip);
      const dir = mkdtempSync(join(scratch, `${mode.tag}-`));
      const name = `res_res_dirs_${mode.tag}`;
      const { host, extPid } = await startHost(dir, name, mode.sandbox);
      const [left] = foldersOf(dir, name);
      assert.ok(left, "the extension's private folder exists while it runs");
      host.kill("SIGKILL");
      await once(host, "exit");
      await waitFor(() => !isAlive(extPid), 10_000, "the orphaned extension to die");
      assert.ok(existsSync(join(left, "home")), "the killed host could not clean up: the folder is left");
      assert.equal(
        parseMarker(readFileSync(join(left, "host"), "utf8"))?.pid,
        host.pid,
        "its marker names the dead host",
      );
      // What the extension could have put in its HOME: a link to a file outside, which must survive the removal.
      const outside = join(dir, "outside.txt");
      writeFileSync(outside, "keep");
      symlinkSync(outside, join(left, "home", "link"));

      const removed = await reclaimPrivateDirs(dir, self);
      assert.deepEqual(removed, [left]);
      assert.equal(existsSync(left), false);
      assert.equal(readFileSync(outside, "utf8"), "keep", "a link inside is removed, never followed");
    });
  }

  it("removes nothing that is not provably a dead host's: no marker, a live host, a symlink, a linked marker, another uid", async (t) => {
    const dir = mkdtempSync(join(scratch, "decoys-"));
    const dead = formatMarker({ ...self, pid: self.pid, startTicks: "1" }); // our pid, another start: a dead host's
    const make = (entry: string, marker?: string) => {
      mkdirSync(join(dir, entry));
      if (marker !== undefined) writeFileSync(join(dir, entry, "host"), marker);
      return join(dir, entry);
    };
    const unmarked = make("pyisolate-nomarker-AAAAAA");
    const live = make("pyisolate-live-BBBBBB", formatMarker(self));
    const target = make("elsewhere", dead);
    symlinkSync(target, join(dir, "pyisolate-link-CCCCCC"));
    const linkedMarker = make("pyisolate-linked-DDDDDD");
    symlinkSync(join(target, "host"), join(linkedMarker, "host"));
    const otherName = make("not-ours-EEEEEE", dead);
    const root = process.getuid?.() === 0;
    // Another uid's folder can only be made as root (chown).
    const foreign = root ? make("pyisolate-foreign-FFFFFF", dead) : undefined;
    if (foreign) chownSync(foreign, 65534, 65534);
    const deadOne = make("pyisolate-dead-GGGGGG", dead);

    const removed = await reclaimPrivateDirs(dir, self);
    assert.deepEqual(removed, [deadOne], "only the dead host's folder");
    for (const kept of [
      unmarked,
      live,
      target,
      join(dir, "pyisolate-link-CCCCCC"),
      linkedMarker,
      otherName,
      ...(foreign ? [foreign] : []),
    ]) {
      assert.ok(existsSync(kept), `${kept} is kept`);
    }
    if (!root) t.diagnostic("another uid's folder: checked only as root (chown needs it)");
  });

  it("is done by a new ExtensionManager at its first load", async () => {
    const dir = mkdtempSync(join(scratch, "manager-"));
    const deadOne = join(dir, "pyisolate-gone-HHHHHH");
    mkdirSync(join(deadOne, "home"), { recursive: true });
    writeFileSync(join(deadOne, "host"), formatMarker({ ...self, startTicks: "1" }));
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = dir;
    const manager = makeManager();
    try {
      const ext = await manager.load({
        name: "res_res_dirs_next",
        modulePath: fixture("res_res_kill"),
        sandbox: { mode: "disabled" },
      });
      assert.equal(existsSync(deadOne), false, "the dead host's folder is gone");
      const [mine] = foldersOf(dir, "res_res_dirs_next");
      assert.deepEqual(parseMarker(readFileSync(join(mine!, "host"), "utf8")), self, "the new folder names this host");
      await ext.stop();
      assert.equal(existsSync(mine!), false, "a stopped extension's folder goes at once");
    } finally {
      process.env.TMPDIR = saved;
      await manager.close();
    }
  });
});
