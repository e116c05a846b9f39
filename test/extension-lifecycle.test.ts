// Real processes: clean environment, crashes, stop, load failures, and children never outliving the host.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { after, describe, it } from "node:test";
import {
  ConfigError,
  ExtensionClosedError,
  ExtensionCrashedError,
  ExtensionLoadError,
  ProtocolError,
  RemoteError,
} from "../src/index.js";
import { fixture, isAlive, makeManager, SHARED_VENV_ROOT, TEST_DIR, waitFor } from "./helpers.js";
import { resolvePython } from "../src/env/builder.js";

const disabled = { mode: "disabled" as const };

describe("the extension environment", () => {
  const manager = makeManager();
  after(() => manager.close());

  it("is built from an allow-list plus what env names", async () => {
    process.env.PYISOLATE_TEST_SECRET_TOKEN = "s3cret";
    try {
      const ext = await manager.load({
        name: "env_echo",
        modulePath: fixture("echo_ext"),
        sandbox: disabled,
        env: { MY_FLAG: "1" },
      });
      assert.equal(await ext.call("env", ["PYISOLATE_TEST_SECRET_TOKEN"]), null);
      assert.equal(await ext.call("env", ["MY_FLAG"]), "1");
      assert.equal(await ext.call("env", ["PYISOLATE_CHILD"]), "1");
      assert.notEqual(await ext.call("env", ["HOME"]), process.env.HOME);
      const keys = (await ext.call("environ_keys")) as string[];
      for (const key of keys) {
        assert.match(key, /^(PATH|LANG|LANGUAGE|LC_\w+|TZ|HOME|TMPDIR|VIRTUAL_ENV|PYISOLATE_CHILD|MY_FLAG)$/, key);
      }
      await ext.stop();
    } finally {
      delete process.env.PYISOLATE_TEST_SECRET_TOKEN;
    }
  });
});

describe("interpreters", () => {
  const manager = makeManager();
  after(() => manager.close());

  for (const version of ["3.9", "3.13"]) {
    it(`runs the guest runtime on Python ${version}`, async (t) => {
      const found = await resolvePython(version).catch((error: Error) => error);
      if (found instanceof Error)
        return t.skip(`Python ${version} is not installed where this user can run it: ${found.message}`);
      const ext = await manager.load({
        name: `py${version.replace(".", "")}_echo`,
        modulePath: fixture("echo_ext"),
        python: version,
        sandbox: disabled,
      });
      assert.ok(ext.pythonVersion.startsWith(`${version}.`), ext.pythonVersion);
      // No Counter service here: the singleton stays local (pyisolate 0.10), and its placeholder body answers None.
      assert.equal(await ext.call("bump", [0]), null);
      assert.deepEqual(await ext.call("echo", [{ big: 2n ** 80n, bytes: new Uint8Array([7]) }]), {
        big: 2n ** 80n,
        bytes: new Uint8Array([7]),
      });
    });
  }
});

describe("a crashing extension", () => {
  const manager = makeManager();
  after(() => manager.close());

  it("rejects every call in flight with ExtensionCrashedError carrying the exit code and stderr", async () => {
    const ext = await manager.load({ name: "crash_exit", modulePath: fixture("echo_ext"), sandbox: disabled });
    const waiting = ext.call("sleep_forever").catch((e: unknown) => e);
    const dying = ext.call("die", [9, "last words before dying"]).catch((e: unknown) => e);
    for (const error of [await waiting, await dying]) {
      assert.ok(error instanceof ExtensionCrashedError);
      assert.equal(error.exitCode, 9);
      assert.ok(error.stderrTail.includes("last words before dying"), error.stderrTail.join("|"));
    }
    assert.equal(ext.state, "crashed");
    const after = await ext.call("echo", [1]).catch((e: unknown) => e);
    assert.ok(after instanceof ExtensionCrashedError);
  });

  it("reports SIGKILL, from inside or outside, as the signal", async () => {
    const ext = await manager.load({ name: "crash_kill", modulePath: fixture("echo_ext"), sandbox: disabled });
    const error = await ext.call("kill_self").catch((e: unknown) => e);
    assert.ok(error instanceof ExtensionCrashedError);
    assert.equal(error.signal, "SIGKILL");

    const other = await manager.load({ name: "crash_kill", modulePath: fixture("echo_ext"), sandbox: disabled });
    const pending = other.call("sleep_forever").catch((e: unknown) => e);
    process.kill(other.pid!, "SIGKILL");
    const killed = await pending;
    assert.ok(killed instanceof ExtensionCrashedError);
    assert.equal(killed.signal, "SIGKILL");
  });

  it("a malformed frame from the extension is a ProtocolError: the extension is killed, the host goes on", async () => {
    const ext = await manager.load({ name: "garbage", modulePath: fixture("echo_ext"), sandbox: disabled });
    const error = await ext.call("send_garbage").catch((e: unknown) => e);
    assert.ok(error instanceof ProtocolError, String(error));
    await once(ext, "exit");
    assert.equal(manager.get("garbage"), undefined);
    const next = await manager.load({ name: "garbage", modulePath: fixture("echo_ext"), sandbox: disabled });
    assert.equal(await next.call("echo", ["fine"]), "fine");
  });

  it("leaves the manager and the other extensions working", async () => {
    const survivor = await manager.load({ name: "survivor", modulePath: fixture("echo_ext"), sandbox: disabled });
    const victim = await manager.load({ name: "victim", modulePath: fixture("echo_ext"), sandbox: disabled });
    await victim.call("die", [1, "bye"]).catch(() => undefined);
    assert.equal(await survivor.call("echo", ["alive"]), "alive");
    assert.equal(manager.get("victim"), undefined);
  });
});

describe("stopping", () => {
  it("runs stop, ends the process, and rejects later calls", async () => {
    const manager = makeManager();
    const ext = await manager.load({ name: "stopper", modulePath: fixture("echo_ext"), sandbox: disabled });
    const pid = ext.pid!;
    const pending = ext.call("sleep_forever").catch((e: unknown) => e);
    await ext.stop();
    assert.ok((await pending) instanceof ExtensionClosedError);
    assert.equal(ext.state, "stopped");
    assert.equal(isAlive(pid), false);
    assert.ok((await ext.call("echo", [1]).catch((e: unknown) => e)) instanceof ExtensionClosedError);
    await ext.stop(); // idempotent
    await manager.close();
  });

  it("kills an extension that ignores the shutdown (busy in a sync call)", async () => {
    const manager = makeManager({ stopGraceMs: 300 });
    const ext = await manager.load({ name: "stubborn", modulePath: fixture("echo_ext"), sandbox: disabled });
    const pid = ext.pid!;
    void ext.call("busy", [60]).catch(() => undefined);
    await ext.stop();
    assert.equal(isAlive(pid), false);
    await manager.close();
  });

  it("manager.close() ends every child", async () => {
    const manager = makeManager();
    const a = await manager.load({ name: "close_a", modulePath: fixture("echo_ext"), sandbox: disabled });
    const b = await manager.load({ name: "close_b", modulePath: fixture("echo_ext"), sandbox: disabled });
    const pids = [a.pid!, b.pid!];
    await manager.close();
    for (const pid of pids) assert.equal(isAlive(pid), false);
    await assert.rejects(manager.load({ name: "late", modulePath: fixture("echo_ext") }), ExtensionClosedError);
  });

  it("the host process dying ends every child", async () => {
    const script = `
      import { ExtensionManager } from ${JSON.stringify(new URL("../src/index.ts", import.meta.url).href)};
      const m = new ExtensionManager({ venvRoot: ${JSON.stringify(SHARED_VENV_ROOT)}, forwardOutput: false });
      const e = await m.load({ name: "orphan_check", modulePath: ${JSON.stringify(fixture("echo_ext"))}, sandbox: { mode: "disabled" } });
      console.log(e.pid);
      setInterval(() => {}, 1000);`;
    const host = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: TEST_DIR,
      stdio: ["ignore", "pipe", "inherit"],
    });
    const [chunk] = (await once(host.stdout!, "data")) as [Buffer];
    const childPid = Number(chunk.toString().trim());
    assert.ok(isAlive(childPid));
    host.kill("SIGKILL");
    await waitFor(() => !isAlive(childPid), 10_000, "the orphaned extension to die");
  });
});

describe("load failures", () => {
  const manager = makeManager();
  after(() => manager.close());

  it("a missing module fails with the Python error", async () => {
    const error = await manager
      .load({ name: "broken", modulePath: fixture("broken_import"), sandbox: disabled })
      .catch((e: unknown) => e);
    assert.ok(error instanceof ExtensionLoadError);
    assert.match(error.message, /ModuleNotFoundError/);
    assert.match(error.message, /numpy_does_not_exist_pyisolate/);
    assert.ok(error.cause instanceof RemoteError);
    assert.equal(manager.get("broken"), undefined);
  });

  it("two extension classes need extensionClass", async () => {
    const error = await manager
      .load({ name: "two", modulePath: fixture("two_classes"), sandbox: disabled })
      .catch((e: unknown) => e);
    assert.ok(error instanceof ExtensionLoadError);
    assert.match(error.message, /First/);
    assert.match(error.message, /Second/);
    const ext = await manager.load({
      name: "two",
      modulePath: fixture("two_classes"),
      sandbox: disabled,
      extensionClass: "two_classes:Second",
    });
    assert.equal(await ext.call("who"), "second");
  });

  it("a hanging import hits startTimeoutMs and the process is killed", async () => {
    const error = await manager
      .load({
        name: "hang",
        modulePath: fixture("hang_import"),
        sandbox: disabled,
        startTimeoutMs: 1500,
      })
      .catch((e: unknown) => e);
    assert.ok(error instanceof ExtensionLoadError);
    assert.match(error.message, /handshake/);
  });

  it("a process that dies while loading reports its exit code and stderr", async () => {
    const error = await manager
      .load({ name: "crash_load", modulePath: fixture("crash_on_load"), sandbox: disabled })
      .catch((e: unknown) => e);
    assert.ok(error instanceof ExtensionLoadError);
    assert.ok(error.cause instanceof ExtensionCrashedError, String(error.cause));
    assert.equal(error.cause.exitCode, 7);
    assert.match(error.message, /GPU driver is on fire/);
  });

  it("rejects bad names, option-bearing dependencies and unknown config keys, naming them", async () => {
    for (const name of ["", "../escape", "a/b", "x;rm -rf", "two words", ".."]) {
      const error = await manager.load({ name, modulePath: fixture("echo_ext") }).catch((e: unknown) => e);
      assert.ok(error instanceof ConfigError, name);
      assert.equal(error.key, "name");
    }
    for (const dep of [
      "--index-url https://evil.example/simple",
      "-f http://x",
      "numpy\n-e .",
      "six --extra-index-url=x",
    ]) {
      const error = await manager
        .load({ name: "deps", modulePath: fixture("echo_ext"), dependencies: [dep] })
        .catch((e: unknown) => e);
      assert.ok(error instanceof ConfigError, dep);
      assert.equal(error.key, "dependencies");
    }
    const fileError = await manager.load({ name: "cfg", modulePath: fixture("bad_config") }).catch((e: unknown) => e);
    assert.ok(fileError instanceof ConfigError);
    assert.equal(fileError.key, "dependancies");
    assert.match(fileError.message, /pyisolate\.yaml/);
    const typeError = await manager
      .load({ name: "cfg", modulePath: fixture("bad_config_type") })
      .catch((e: unknown) => e);
    assert.ok(typeError instanceof ConfigError);
    assert.equal(typeError.key, "dependencies");
    assert.match(typeError.message, /bad_config_type\/pyisolate\.yaml/);
    const missing = await manager
      .load({ name: "nope", modulePath: fixture("does_not_exist") })
      .catch((e: unknown) => e);
    assert.ok(missing instanceof ConfigError);
    assert.equal(missing.key, "modulePath");
  });

  it("refuses a second extension of the same name", async () => {
    await manager.load({ name: "dup", modulePath: fixture("echo_ext"), sandbox: disabled });
    await assert.rejects(
      manager.load({ name: "dup", modulePath: fixture("echo_ext"), sandbox: disabled }),
      ConfigError,
    );
  });

  it("refuses an unknown sandbox key, naming it (the sandbox itself is tested in sandbox-*.test.ts)", async () => {
    const error = await manager
      .load({ name: "req", modulePath: fixture("echo_ext"), sandbox: { mode: "required", nope: 1 } as never })
      .catch((e: unknown) => e);
    assert.ok(error instanceof ConfigError);
    assert.equal(error.key, "sandbox.nope");
  });
});
