// `pyisolate prune` on real venvs: what it lists with sizes, what --delete removes, and what it never touches.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import type { Extension, ExtensionManager } from "../src/index.js";
import { classify } from "../src/prune/classify.js";
import { pathsOfProcess, userOf } from "../src/prune/live.js";
import { planPrune } from "../src/prune/plan.js";
import { detectSandbox } from "../src/sandbox/index.js";
import { fixture, makeManager, waitFor } from "./helpers.js";
import { SANDBOX_MODES, unavailableMode } from "./sandbox-modes.js";

const run = promisify(execFile);
const CLI = join(import.meta.dirname, "..", "src", "cli.ts");

function prune(args: string[]) {
  return run(process.execPath, ["--import", "tsx", CLI, "prune", ...args], { cwd: import.meta.dirname });
}

describe("pyisolate prune", { timeout: 300_000 }, () => {
  const work = mkdtempSync(join(tmpdir(), "native-pkg-prune-"));
  const root = join(work, "venvs");
  const outside = join(work, "outside");
  let manager: ExtensionManager;
  let live: Extension;

  before(async () => {
    manager = makeManager({ venvRoot: root });
    // Three real venvs; "live" keeps running while prune looks.
    for (const name of ["pkg_keep", "pkg_drop"]) {
      const ext = await manager.load({ name, modulePath: fixture("echo_ext"), sandbox: { mode: "disabled" } });
      await ext.stop();
    }
    live = await manager.load({ name: "pkg_live", modulePath: fixture("echo_ext"), sandbox: { mode: "disabled" } });
    // What a crashed build leaves, an install cache, and what pyisolate did not make.
    mkdirSync(join(root, ".build-pkg_keep-0123456789ab", "lib"), { recursive: true });
    writeFileSync(join(root, ".build-pkg_keep-0123456789ab", "lib", "half.py"), "x = 1\n".repeat(1000));
    mkdirSync(join(root, ".cache", "pkg_drop", "uv"), { recursive: true });
    writeFileSync(join(root, ".cache", "pkg_drop", "uv", "wheel.bin"), Buffer.alloc(256 * 1024, 1));
    mkdirSync(outside);
    writeFileSync(join(outside, "precious.txt"), "the user's\n");
    symlinkSync(outside, join(root, "escape"));
    symlinkSync(outside, join(root, "pkg_drop", "lib", "link-out"));
    symlinkSync(outside, join(root, ".cache", "pkg_drop", "uv", "link-out"));
    writeFileSync(join(root, "notes.txt"), "mine\n");
  });
  after(async () => {
    await manager.close();
    rmSync(work, { recursive: true, force: true });
  });

  test("a dry run (the default) lists unused venvs, caches, state and crashed builds with sizes, and removes nothing", async () => {
    const { stdout } = await prune(["--venv-root", root, "--keep", "pkg_keep"]);
    const lines = stdout.trim().split("\n");
    const listed = (kind: string, path: string) =>
      lines.some((l) =>
        new RegExp(`^would remove +[0-9.]+ (B|KiB|MiB)  ${kind} +${path.replace(/[.]/g, "\\.")}$`).test(l),
      );
    assert.ok(listed("venv", join(root, "pkg_drop")), stdout);
    assert.ok(listed("state", join(root, ".state", "pkg_drop.json")), stdout);
    assert.ok(listed("cache", join(root, ".cache", "pkg_drop")), stdout);
    assert.ok(listed("build", join(root, ".build-pkg_keep-0123456789ab")), stdout);
    assert.match(stdout, new RegExp(`kept +${join(root, "pkg_live")}: in use by pid \\d+`));
    assert.match(stdout, new RegExp(`kept +${join(root, "escape")}: a symlink, not a venv pyisolate made`));
    assert.match(stdout, new RegExp(`kept +${join(root, "notes.txt")}: not a venv pyisolate made`));
    assert.match(
      lines.at(-1)!,
      /^would free [0-9.]+ (KiB|MiB) in 4 entries of .* \(run again with --delete to remove them\)$/,
    );
    assert.doesNotMatch(stdout, /pkg_keep[^-]/, "the kept extension is not listed");
    for (const path of ["pkg_drop", ".cache/pkg_drop", ".build-pkg_keep-0123456789ab", ".state/pkg_drop.json"])
      assert.ok(existsSync(join(root, path)), path);
  });

  test("--json gives the same plan as data, with sizes in bytes", async () => {
    const report = JSON.parse((await prune(["--venv-root", root, "--keep", "pkg_keep", "--json"])).stdout);
    assert.equal(report.dryRun, true);
    const cache = report.remove.find((r: { kind: string }) => r.kind === "cache");
    assert.ok(cache.bytes >= 256 * 1024, `the cache's 256 KiB file counts: ${cache.bytes}`);
    assert.equal(
      report.bytes,
      report.remove.reduce((s: number, r: { bytes: number }) => s + r.bytes, 0),
    );
  });

  test("--delete removes exactly the listed entries, follows no symlink, and the kept venv is reused as it was", async () => {
    const { stdout } = await prune(["--venv-root", root, "--keep", "pkg_keep", "--delete"]);
    assert.match(stdout, /^freed [0-9.]+ (KiB|MiB) in 4 entries of /m);
    for (const path of ["pkg_drop", ".cache/pkg_drop", ".build-pkg_keep-0123456789ab", ".state/pkg_drop.json"])
      assert.equal(existsSync(join(root, path)), false, path);
    assert.equal(
      readFileSync(join(outside, "precious.txt"), "utf8"),
      "the user's\n",
      "nothing behind a symlink was deleted",
    );
    for (const path of ["escape", "notes.txt", "pkg_live", ".state/pkg_live.json", "pkg_keep", ".state/pkg_keep.json"])
      assert.ok(existsSync(join(root, path)), path);
    assert.equal(await live.call("echo", ["still here"]), "still here");
    const events: { reused?: boolean }[] = [];
    const again = await manager.load({
      name: "pkg_keep",
      modulePath: fixture("echo_ext"),
      sandbox: { mode: "disabled" },
      onProgress: (e) => events.push(e),
    });
    assert.equal(events.at(-1)?.reused, true, "the kept venv was not touched");
    await again.stop();
  });

  test("--delete with --dry-run is refused with the reason first", async () => {
    const failed = await prune(["--venv-root", root, "--delete", "--dry-run"]).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(failed?.code, 1);
    assert.match(failed!.stderr, /^pyisolate: --delete and --dry-run contradict each other/);
  });
});

describe("a venv that a running extension uses is kept", { timeout: 300_000 }, async () => {
  const caps = await detectSandbox();
  const root = mkdtempSync(join(tmpdir(), "native-pkg-prune-live-"));
  const manager = makeManager({ venvRoot: root });
  after(async () => {
    await manager.close();
    rmSync(root, { recursive: true, force: true });
  });
  for (const mode of SANDBOX_MODES) {
    test(
      `under ${mode.label}: kept while the extension runs, listed once it stopped`,
      { skip: unavailableMode(caps, mode.sandbox) ?? false },
      async () => {
        const name = `pkg_live_${mode.tag}`;
        const ext = await manager.load({ name, modulePath: fixture("echo_ext"), sandbox: mode.sandbox });
        const venv = join(root, name);
        const running = await planPrune({ venvRoot: root });
        assert.match(running.skipped.find((s) => s.path === venv)?.reason ?? "", /^in use by pid \d+$/);
        assert.equal(
          running.remove.some((r) => r.path === venv),
          false,
        );
        await ext.stop();
        // The guest's processes are gone when stop() resolves, but /proc may list a reaped child a moment longer.
        await waitFor(
          async () => (await planPrune({ venvRoot: root })).remove.some((r) => r.path === venv),
          10_000,
          "the venv to be free",
        );
      },
    );
  }
});

describe("prune's policy", () => {
  test("classify keeps kept names and what pyisolate did not make, and always lists crashed builds", () => {
    const { targets, skipped } = classify(
      {
        root: "/r",
        entries: [
          { name: "a", type: "dir" },
          { name: "b", type: "dir" },
          { name: "c", type: "dir", looksLikeVenv: true },
          { name: "d", type: "dir" },
          { name: "e", type: "symlink" },
          { name: ".old-a-0123456789ab", type: "dir" },
          { name: ".lock-b", type: "file" },
          { name: ".lock-b.12-abcd.tmp", type: "file" },
          { name: ".hidden", type: "dir" },
          { name: ".state", type: "dir" },
        ],
        stateNames: ["a", "b"],
        cacheNames: ["a", "z"],
      },
      new Set(["a"]),
    );
    assert.deepEqual(
      targets.map((t) => `${t.kind}:${t.path}`),
      [
        "venv:/r/b",
        "venv:/r/c",
        "build:/r/.old-a-0123456789ab",
        "lock:/r/.lock-b",
        "state:/r/.state/b.json",
        "cache:/r/.cache/z",
      ],
    );
    assert.deepEqual(
      skipped.map((s) => s.path),
      ["/r/d", "/r/e", "/r/.hidden"],
    );
  });

  test("a process uses a venv when its environment names it or it maps a file below it", () => {
    const environ = `PATH=/usr/bin\0PYISOLATE_VENV=${JSON.stringify({ prefix: "/r/a", system_site_packages: false })}\0`;
    const maps =
      "7f00-7f01 r-xp 00000000 08:01 42    /r/b/lib/python3.11/site-packages/x.so\n7f02-7f03 rw-p 00000000 00:00 0 \n";
    const byPid = new Map([[7, pathsOfProcess(environ, maps)]]);
    assert.equal(userOf("/r/a", byPid), 7);
    assert.equal(userOf("/r/b", byPid), 7);
    assert.equal(userOf("/r/ab", byPid), undefined, "a name that only starts the same is another venv");
  });
});
