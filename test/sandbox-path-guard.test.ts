// Path guard: config paths that would open the house are refused with the path named; ordinary folders pass.

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { ConfigError } from "../src/errors.js";
import { dangerReason, guardConfigPaths, type HostDirs } from "../src/sandbox/path-guard.js";

const root = mkdtempSync(path.join(tmpdir(), "pyisolate-guard-"));
after(() => rmSync(root, { recursive: true, force: true }));
const HOST: HostDirs = { home: "/home/alice", tmp: "/tmp" };
const KEY = "sandbox.writablePaths";

async function refused(p: string, named = p): Promise<void> {
  await assert.rejects(guardConfigPaths([p], KEY, { host: HOST }), (e: unknown) => {
    assert.ok(e instanceof ConfigError, String(e));
    assert.equal(e.key, KEY);
    assert.ok(e.message.includes(`"${named}"`), `message names ${named}: ${e.message}`);
    return true;
  });
}

describe("path guard", () => {
  for (const p of [
    "/",
    "/home",
    "/root",
    "/etc",
    "/proc",
    "/sys",
    "/run",
    "/var",
    "/tmp",
    "/home/alice",
    "/etc/ssl",
    "/proc/1",
    "/run/user/1000",
    "/dev",
    "/home/alice/.ssh",
    "/home/alice/.aws/credentials",
    "/usr",
  ]) {
    it(`refuses ${p}`, () => refused(p));
  }

  it("refuses parents of the protected folders, and the spelling with a trailing slash or dots", async () => {
    assert.ok(dangerReason("/", HOST));
    await refused("/home/");
    await refused("/srv/../etc");
    await refused("/home/alice/project/../..");
  });

  it("refuses a symlink that resolves into /etc, naming the path as written and where it leads", async () => {
    const link = path.join(root, "innocent");
    symlinkSync("/etc", link);
    await assert.rejects(
      guardConfigPaths([link], KEY, { host: HOST }),
      (e: unknown) => e instanceof ConfigError && e.message.includes(`"${link}"`) && e.message.includes("/etc"),
    );
    const fileLink = path.join(root, "shadow-link");
    symlinkSync("/etc/shadow", fileLink);
    await refused(fileLink);
    const homeLink = path.join(root, "home-link");
    symlinkSync("/home", homeLink);
    await refused(homeLink);
  });

  it("refuses a dangling symlink chain and a path below a symlinked folder that leads into /proc", async () => {
    const dangling = path.join(root, "dangling");
    symlinkSync("/etc/does-not-exist/yet", dangling);
    await refused(dangling);
    const procLink = path.join(root, "proc-link");
    symlinkSync("/proc", procLink);
    await refused(path.join(procLink, "self"));
  });

  it("refuses relative paths without a base, and resolves them against one", async () => {
    await assert.rejects(
      guardConfigPaths(["data"], KEY, { host: HOST }),
      (e: unknown) => e instanceof ConfigError && e.message.includes('"data"'),
    );
    const out = await guardConfigPaths(["data"], KEY, { host: HOST, base: root });
    assert.deepEqual(out, [path.join(root, "data")]);
  });

  it("accepts a normal project folder, inside the host's home or /tmp, resolving symlinks", async () => {
    const project = path.join(root, "project", "data");
    mkdirSync(project, { recursive: true });
    const link = path.join(root, "project-link");
    symlinkSync(path.join(root, "project"), link);
    const out = await guardConfigPaths([project, path.join(link, "data"), path.join(root, "not-yet")], KEY, {
      host: HOST,
    });
    assert.deepEqual(out, [project, project, path.join(root, "not-yet")]);
    assert.equal(dangerReason("/home/alice/projects/app/cache", HOST), undefined);
    assert.equal(dangerReason("/srv/models", HOST), undefined);
  });
});
