// Wiring the sandbox into load: backend choice, modes, config checks, and the process lifecycle under bwrap/Landlock.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { ConfigError, ExtensionCrashedError, SandboxUnavailableError } from "../src/index.js";
import { unwrapBwrapExit } from "../src/launch-extension.js";
import { chooseSandbox } from "../src/sandbox/choose.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import {
  ALL_NAMESPACES,
  DEFAULT_SANDBOX_POLICY,
  type SandboxCapabilities,
  type SandboxPolicy,
} from "../src/sandbox/types.js";
import { fixture, isAlive, makeManager, TEST_DIR, waitFor } from "./helpers.js";

const NONE = { user: false, pid: false, net: false, ipc: false, uts: false, cgroup: false };
function caps(over: Partial<SandboxCapabilities>): SandboxCapabilities {
  return {
    platform: "linux",
    model: "none",
    backend: "bwrap",
    bwrap: { path: "/usr/bin/bwrap", version: "0.8.0" },
    namespaces: { ...ALL_NAMESPACES },
    landlockAbi: 6,
    inContainer: false,
    probes: [],
    gaps: [],
    ...over,
  };
}
const APPARMOR = caps({
  model: "apparmor",
  backend: "landlock",
  namespaces: NONE,
  gaps: [
    {
      id: "userns-apparmor",
      problem: "AppArmor restricts unprivileged user namespaces",
      remedy: ["sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"],
    },
  ],
});
const policy = (over: Partial<SandboxPolicy> = {}): SandboxPolicy => ({ ...DEFAULT_SANDBOX_POLICY, ...over });

describe("chooseSandbox (pure)", () => {
  it("takes full bwrap when it works, and says nothing was lost", () => {
    assert.deepEqual(chooseSandbox("x", policy(), caps({})), { backend: "bwrap", degraded: false });
  });

  it("falls back bwrap → bwrap-degraded → landlock, marking it degraded", () => {
    const degraded = caps({
      model: "sysctl",
      backend: "bwrap-degraded",
      namespaces: { ...ALL_NAMESPACES, user: false },
    });
    assert.equal(chooseSandbox("x", policy(), degraded).backend, "bwrap-degraded");
    assert.equal(chooseSandbox("x", policy(), degraded).degraded, true);
    const landlock = chooseSandbox("x", policy(), APPARMOR);
    assert.deepEqual([landlock.backend, landlock.degraded], ["landlock", true]);
    assert.match(landlock.shortfall!, /bwrap/);
    // Degraded bwrap without a network namespace cannot keep the network out: Landlock can.
    const noNet = caps({ model: "container", backend: "bwrap-degraded", namespaces: { ...NONE, pid: true } });
    assert.equal(chooseSandbox("x", policy(), noNet).backend, "landlock");
  });

  it("required: throws SandboxUnavailableError with detection's remedy when nothing can run", () => {
    const nothing = caps({ ...APPARMOR, backend: "none", landlockAbi: 0 });
    const error = (() => {
      try {
        chooseSandbox("ext", policy(), nothing);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    assert.ok(error instanceof SandboxUnavailableError);
    assert.equal(error.code, "ERR_PYISOLATE_SANDBOX");
    assert.equal(error.model, "apparmor");
    assert.deepEqual(error.remedy, ["sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"]);
    assert.match(error.message, /apparmor_restrict_unprivileged_userns=0/);
    assert.match(error.message, /mode: "preferred"/);
  });

  it("required: refuses Landlock that cannot block TCP when network is false", () => {
    assert.throws(
      () => chooseSandbox("x", policy({ backend: "landlock" }), caps({ landlockAbi: 3 })),
      SandboxUnavailableError,
    );
    assert.equal(
      chooseSandbox("x", policy({ backend: "landlock", network: true }), caps({ landlockAbi: 3 })).backend,
      "landlock",
    );
  });

  it("preferred: a named backend that cannot run falls back; nothing at all means none, degraded", () => {
    const r = chooseSandbox("x", policy({ mode: "preferred", backend: "bwrap" }), APPARMOR);
    assert.deepEqual([r.backend, r.degraded], ["landlock", true]);
    const none = chooseSandbox(
      "x",
      policy({ mode: "preferred" }),
      caps({ ...APPARMOR, backend: "none", landlockAbi: 0 }),
    );
    assert.deepEqual([none.backend, none.degraded], ["none", true]);
  });

  it("a backend named on purpose is not degraded; disabled needs no detection", () => {
    assert.deepEqual(chooseSandbox("x", policy({ backend: "landlock" }), caps({})), {
      backend: "landlock",
      degraded: false,
    });
    assert.deepEqual(chooseSandbox("x", policy({ mode: "disabled" }), undefined), { backend: "none", degraded: false });
  });
});

it("unwrapBwrapExit gives back the signal bwrap turned into 128 + N", () => {
  assert.deepEqual(unwrapBwrapExit({ exitCode: 137, signal: null, stderrTail: [] }), {
    exitCode: null,
    signal: "SIGKILL",
    stderrTail: [],
  });
  assert.deepEqual(unwrapBwrapExit({ exitCode: 3, signal: null, stderrTail: [] }), {
    exitCode: 3,
    signal: null,
    stderrTail: [],
  });
});

describe("load: config checks", () => {
  const manager = makeManager();
  after(() => manager.close());

  it("refuses a pyisolate.yaml that tries to loosen the sandbox", async () => {
    const error = await manager
      .load({ name: "yaml_sandbox", modulePath: fixture("yaml_sandbox") })
      .catch((e: unknown) => e);
    assert.ok(error instanceof ConfigError, String(error));
    assert.equal(error.key, "sandbox.mode");
    assert.match(error.message, /pyisolate\.yaml/);
  });

  it("refuses writable paths that open the house, naming the path", async () => {
    // Enough "../" to reach / from wherever the checkout lies (a deep clone made six too few).
    for (const bad of ["/home", "/etc/ssh", `${"../".repeat(64)}root`]) {
      const error = await manager
        .load({ name: "guarded", modulePath: fixture("echo_ext"), sandbox: { writablePaths: [bad] } })
        .catch((e: unknown) => e);
      assert.ok(error instanceof ConfigError, `${bad}: ${String(error)}`);
      assert.equal(error.key, "sandbox.writablePaths");
      assert.ok(error.message.includes(bad), error.message);
    }
  });
});

/** Every descendant of `pid`, from /proc/<pid>/task/<pid>/children. */
function descendants(pid: number): number[] {
  let children: number[];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
  return children.flatMap((c) => [c, ...descendants(c)]);
}

for (const backend of ["bwrap", "landlock"] as const) {
  describe(`lifecycle under ${backend}`, () => {
    const manager = makeManager({ stopGraceMs: 300 });
    after(() => manager.close());
    const sandbox = { mode: "required" as const, backend };
    const skip = async () => {
      const c = await detectSandbox();
      if (backend === "bwrap" && c.backend !== "bwrap")
        return `bwrap cannot run with every namespace here (model ${c.model})`;
      if (backend === "landlock" && c.landlockAbi === 0) return "the kernel has no Landlock";
      return undefined;
    };

    it("stop ends every process of the extension, even one that ignores the shutdown message", async (t) => {
      const why = await skip();
      if (why) return t.skip(why);
      const ext = await manager.load({ name: `life_${backend}`, modulePath: fixture("echo_ext"), sandbox });
      assert.equal(ext.sandbox.backend, backend);
      const all = [ext.pid!, ...descendants(ext.pid!)];
      if (backend === "bwrap") assert.ok(all.length >= 2, `bwrap and the python inside: ${all.join(",")}`);
      void ext.call("busy", [30]).catch(() => undefined); // blocks the guest's event loop: only signals end it
      await ext.stop();
      await waitFor(() => all.every((pid) => !isAlive(pid)), 5000, `${all.join(",")} to die`);
    });

    it("a SIGKILL from outside is a crash reported as the signal, and nothing is left behind", async (t) => {
      const why = await skip();
      if (why) return t.skip(why);
      const ext = await manager.load({ name: `kill_${backend}`, modulePath: fixture("echo_ext"), sandbox });
      const all = [ext.pid!, ...descendants(ext.pid!)];
      const pending = ext.call("sleep_forever").catch((e: unknown) => e);
      process.kill(ext.pid!, "SIGKILL");
      const error = await pending;
      assert.ok(error instanceof ExtensionCrashedError);
      assert.equal(error.signal, "SIGKILL");
      await waitFor(() => all.every((pid) => !isAlive(pid)), 5000, `${all.join(",")} to die`);
      const self = await manager.load({ name: `kill_${backend}`, modulePath: fixture("echo_ext"), sandbox });
      const inside = await self.call("kill_self").catch((e: unknown) => e);
      assert.ok(inside instanceof ExtensionCrashedError);
      assert.equal(inside.signal, "SIGKILL", "bwrap's exit code 137 is reported as the signal");
    });

    it("dies with the host: SIGKILL of the Node process leaves no sandboxed python behind", async (t) => {
      const why = await skip();
      if (why) return t.skip(why);
      const script = `
        import { ExtensionManager, createConsoleLogger } from ${JSON.stringify(path.join(TEST_DIR, "..", "src", "index.ts"))};
        const m = new ExtensionManager({ venvRoot: ${JSON.stringify(path.join(tmpdir(), "pyisolate-test-venvs"))}, logger: createConsoleLogger("silent"), forwardOutput: false });
        const e = await m.load({ name: "orphan_${backend}", modulePath: ${JSON.stringify(fixture("echo_ext"))}, sandbox: ${JSON.stringify(sandbox)} });
        console.log(e.pid);
        setInterval(() => {}, 1000);
      `;
      const dir = mkdtempSync(path.join(tmpdir(), "pyisolate-orphan-"));
      try {
        const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
          stdio: ["ignore", "pipe", "inherit"],
          cwd: path.join(TEST_DIR, ".."),
        });
        const [line] = (await once(child.stdout!, "data")) as [Buffer];
        const pid = Number(line.toString().trim());
        const all = [pid, ...descendants(pid)];
        assert.ok(all.every(isAlive));
        child.kill("SIGKILL");
        await waitFor(() => all.every((p) => !isAlive(p)), 10_000, `${all.join(",")} to die with the host`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it("the extension sees its private HOME, and Landlock's rules are not left in its environment", async (t) => {
      const why = await skip();
      if (why) return t.skip(why);
      const ext = await manager.load({ name: `env_${backend}`, modulePath: fixture("echo_ext"), sandbox });
      const home = (await ext.call("env", ["HOME"])) as string;
      assert.match(home, /pyisolate-env_/);
      assert.equal(await ext.call("env", ["PYISOLATE_LANDLOCK"]), null);
      assert.equal(await ext.call("env", ["TMPDIR"]), backend === "bwrap" ? "/tmp" : home.replace(/home$/, "tmp"));
      await ext.stop();
    });
  });
}
