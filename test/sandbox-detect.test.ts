// Real detection on this host, and the degraded sysctl case inside a user namespace this test makes.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { detectSandbox, probeLandlockAbi } from "../src/sandbox/detect.js";
import { findExecutable } from "../src/sandbox/host.js";
import type { SandboxCapabilities } from "../src/sandbox/types.js";
import type { AttackReport } from "./fixtures/sandbox/world.js";

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
/** What this host is expected to allow; CI and the dev machine offer everything. Set it to run elsewhere. */
const EXPECTED_MODEL = process.env.PYISOLATE_EXPECT_SANDBOX_MODEL ?? "none";

describe("detectSandbox on this host", () => {
  it(`finds bwrap working with every namespace (model "${EXPECTED_MODEL}") and Landlock`, async (t) => {
    if (process.platform !== "linux") return t.skip(`not Linux (${process.platform})`);
    const caps = await detectSandbox();
    assert.ok(caps.bwrap, "bwrap is installed (apt-get install -y bubblewrap)");
    assert.equal(caps.model, EXPECTED_MODEL, JSON.stringify(caps.gaps));
    if (EXPECTED_MODEL === "none") {
      assert.equal(caps.backend, "bwrap");
      assert.ok(caps.namespaces.user && caps.namespaces.pid && caps.namespaces.net, JSON.stringify(caps.namespaces));
      assert.equal(caps.probes.length, 1, "one probe launch when it works");
      assert.ok(caps.probes[0]!.argv.includes("--unshare-user"));
    }
    assert.ok(caps.landlockAbi >= 1, `Landlock ABI ${caps.landlockAbi}`);
    assert.match(caps.bwrap.version ?? "", /^\d+\.\d+/);
    for (const gap of caps.gaps) assert.ok(gap.remedy.length > 0, gap.id);
  });

  it("is cached per process", async () => {
    const first = detectSandbox();
    assert.equal(detectSandbox(), first);
    const t0 = performance.now();
    await detectSandbox();
    assert.ok(performance.now() - t0 < 50);
    assert.notEqual(detectSandbox({ fresh: true }), first);
  });

  it("reports bwrap-missing with an install command when bwrap is not there", async (t) => {
    if (process.platform !== "linux") return t.skip(`not Linux (${process.platform})`);
    const caps = await detectSandbox({ bwrapPath: "/nonexistent/bwrap" });
    assert.equal(caps.model, "bwrap-missing");
    assert.equal(caps.backend, caps.landlockAbi > 0 ? "landlock" : "none");
    assert.ok(caps.gaps.some((g) => g.remedy.some((r) => r.includes("apt-get install -y bubblewrap"))));
  });

  it("asks the kernel for the Landlock ABI through python", async (t) => {
    const python = await findExecutable("python3");
    if (!python) return t.skip("no python3 on PATH");
    assert.ok((await probeLandlockAbi(python)) >= 1);
    assert.equal(await probeLandlockAbi("/nonexistent/python3"), 0);
  });
});

describe("degraded mode: user namespaces blocked by user.max_user_namespaces = 0", () => {
  it("detects sysctl, keeps pid/net namespaces, and the degraded argv still confines files", async (t) => {
    const unshare = await findExecutable("unshare");
    if (!unshare)
      return t.skip("unshare (util-linux) is not installed: cannot make the user namespace this test needs");
    const probe = await run(unshare, ["--user", "--map-root-user", "--mount", "true"]).then(
      () => undefined,
      (e: Error) => e.message,
    );
    if (probe) return t.skip(`this host cannot make a user namespace for the test: ${probe}`);
    const child = path.join(ROOT, "test", "fixtures", "sandbox", "degraded-child.ts");
    const { stdout } = await run(
      unshare,
      ["--user", "--map-root-user", "--mount", process.execPath, "--import", "tsx", child],
      { cwd: ROOT, timeout: 60_000 },
    );
    const out = JSON.parse(stdout) as { caps: SandboxCapabilities; args?: string[]; report?: AttackReport };
    assert.equal(out.caps.model, "sysctl");
    assert.equal(out.caps.backend, "bwrap-degraded");
    assert.equal(out.caps.namespaces.user, false);
    assert.ok(out.caps.namespaces.pid && out.caps.namespaces.net);
    assert.match(out.caps.probes[0]!.stderr, /ENOSPC|No space left/);
    const gap = out.caps.gaps.find((g) => g.id === "userns-sysctl");
    assert.ok(gap?.remedy.some((r) => r.includes("user.max_user_namespaces")));
    assert.ok(out.args && !out.args.includes("--unshare-user") && out.args.includes("--unshare-pid"));
    const r = out.report!;
    assert.equal(r.read_secret[0], "FileNotFoundError");
    assert.deepEqual(r.read_own, ["ok", "own data"]);
    assert.equal(r.write_own[0], "OSError");
    assert.equal(r.write_writable[0], "ok");
    assert.equal(r.connect[0], "ConnectionRefusedError");
    assert.ok((r.pids[1] as number[]).length <= 3, `host processes visible: ${JSON.stringify(r.pids)}`);
  });
});
