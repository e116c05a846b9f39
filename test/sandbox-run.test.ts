// Real runs: python3 under the argv the policy builds, attacked from inside; the same attack without bwrap succeeds.

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { after, before, describe, it } from "node:test";
import { detectSandbox } from "../src/sandbox/detect.js";
import type { SandboxCapabilities } from "../src/sandbox/types.js";
import { attack, makeWorld, worldArgs, type World } from "./fixtures/sandbox/world.js";

let caps: SandboxCapabilities;
let world: World;
let server: Server;
let port = 0;
let skipReason: string | undefined;

before(async () => {
  caps = await detectSandbox();
  if (caps.backend !== "bwrap" && caps.backend !== "bwrap-degraded") {
    skipReason = `bwrap cannot run here (model ${caps.model}): ${caps.gaps.map((g) => g.problem).join("; ")}`;
    return;
  }
  world = await makeWorld();
  server = createServer((s) => s.end());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as { port: number }).port;
});
after(() => {
  server?.close();
  world?.cleanup();
});

describe("sandboxed python3", () => {
  it("control: without the sandbox every attack succeeds", async (t) => {
    if (skipReason) return t.skip(skipReason);
    const r = await attack(world, undefined, [], port);
    assert.deepEqual(r.read_secret, ["ok", "the host's secret"]);
    assert.equal(r.write_own[0], "ok");
    assert.equal(r.write_venv[0], "ok");
    assert.equal(r.connect[0], "ok");
    assert.ok((r.list_world[1] as string[]).includes("home"));
  });

  it("without network: the secret, the venv, its own folder and 127.0.0.1 are out of reach", async (t) => {
    if (skipReason) return t.skip(skipReason);
    const r = await attack(world, caps.bwrap!.path, await worldArgs(world, { network: false }, caps.namespaces), port);
    assert.equal(r.read_secret[0], "FileNotFoundError", `secret: ${JSON.stringify(r.read_secret)}`);
    assert.deepEqual(r.read_own, ["ok", "own data"]);
    assert.equal(r.write_own[0], "OSError", `write own: ${JSON.stringify(r.write_own)}`);
    assert.match(String(r.write_own[1]), /Read-only file system/);
    assert.equal(r.write_venv[0], "OSError");
    assert.equal(r.write_writable[0], "ok");
    assert.ok(existsSync(`${world.data}/out.txt`), "the writable folder is the host's folder");
    assert.equal(r.read_passwd[0], "FileNotFoundError", "only chosen /etc files are visible");
    assert.equal(r.list_home[0], "FileNotFoundError");
    assert.deepEqual(
      (r.list_world[1] as string[]).sort(),
      ["data", "ext", "venv"],
      "the host's tmp shows only what was bound",
    );
    assert.equal(r.connect[0], "ConnectionRefusedError", `connect: ${JSON.stringify(r.connect)}`);
    assert.equal(r.home, "/tmp/home");
    assert.equal(r.cwd, world.ext);
    if (caps.namespaces.pid)
      assert.ok((r.pids[1] as number[]).length <= 3, `host processes visible: ${JSON.stringify(r.pids)}`);
  });

  it("with network: true the connection works and the files stay out of reach", async (t) => {
    if (skipReason) return t.skip(skipReason);
    const r = await attack(world, caps.bwrap!.path, await worldArgs(world, { network: true }, caps.namespaces), port);
    assert.deepEqual(r.connect, ["ok", "connected"]);
    assert.equal(r.read_secret[0], "FileNotFoundError");
    assert.equal(r.write_own[0], "OSError");
  });
});
