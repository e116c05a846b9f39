// Errors a Node developer meets lead with the reason in one line, stay short, and carry the details in fields.

import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  CallAbortedError,
  ConfigError,
  EnvironmentBuildError,
  ExtensionCrashedError,
  ExtensionLoadError,
  ExtensionManager,
  RemoteError,
  Tensor,
} from "../src/index.js";
import { resolvePython } from "../src/env/python.js";
import { pythonSupport } from "../src/doctor/report.js";
import { installerReason, MAX_MESSAGE_CHARS } from "../src/error-text.js";
import { fixture, makeManager, SHARED_VENV_ROOT } from "./helpers.js";
import { NUMPY } from "./tensor-helpers.js";

const PRINT = fixture("native_output_print");
const MISSING = "this-package-does-not-exist-pyisolate==1.0";

describe("a failed install", () => {
  const manager = makeManager();
  after(() => manager.close());

  for (const backend of ["uv", "pip"] as const) {
    it(`with ${backend}: the message is one line that leads with the installer's reason; command and output are fields`, async () => {
      const error = await manager
        .load({ name: `native_output_fail_${backend}`, modulePath: PRINT, backend, dependencies: [MISSING] })
        .catch((e: unknown) => e);
      assert.ok(error instanceof EnvironmentBuildError, String(error));
      assert.ok(!error.message.includes("\n"), error.message);
      assert.ok(error.message.length <= MAX_MESSAGE_CHARS, `${error.message.length} characters`);
      assert.match(error.message, /^installing dependencies with (uv|pip)\b.* failed \(exited with code 1\): /);
      const reason =
        backend === "uv"
          ? /No solution found when resolving dependencies: Because this-package-does-not-exist-pyisolate was not found/
          : /No matching distribution found for this-package-does-not-exist-pyisolate==1\.0/;
      assert.match(error.message, reason);
      // The command line (a sandbox wrapper's, kilobytes long) is a field, not the message.
      assert.ok(!error.message.includes("--ro-bind"));
      assert.equal(error.command?.at(-1), MISSING);
      assert.match(error.output, /this-package-does-not-exist-pyisolate/);
    });
  }
});

describe("values the wire cannot carry", () => {
  const manager = makeManager();
  after(() => manager.close());
  // The venv the CLI test builds too (numpy, for the Tensor that arrives as an ndarray).
  const load = () =>
    manager.get("native_output_np") ??
    manager.load({ name: "native_output_np", modulePath: PRINT, dependencies: NUMPY, sandbox: { mode: "disabled" } });

  it("a circular value is refused with a short message that says so", async () => {
    const ext = await load();
    const cyclic: Record<string, unknown> = { x: 1 };
    cyclic.self = cyclic;
    const error = await ext.call("kind", [cyclic]).catch((e: unknown) => e);
    assert.ok(error instanceof TypeError);
    assert.ok(error.message.length < 200, `${error.message.length} characters: ${error.message.slice(0, 300)}`);
    assert.match(
      error.message,
      /^cannot send a value nested deeper than 1000 levels \(is it circular\?\) at args\[0\]\.self\.self/,
    );
  });

  it("a Float64Array is refused with a pointer to Tensor.from, which sends it", async () => {
    const ext = await load();
    const error = await ext.call("kind", [new Float64Array([1, 2])]).catch((e: unknown) => e);
    assert.ok(error instanceof TypeError);
    assert.match(error.message, /^cannot send a Float64Array at args\[0\]: .*Tensor\.from\(array, shape\)/);
    assert.deepEqual(
      await ext.call("kind", [Tensor.from(new Float64Array([1, 2]))]).then((r) => (r as unknown[])[0]),
      "ndarray",
    );
  });

  it("a Map arrives as a Python dict, keys keeping their type (documented in docs/protocol.md)", async () => {
    const ext = await load();
    assert.deepEqual(
      await ext.call("kind", [
        new Map<unknown, string>([
          [2, "b"],
          [1, "a"],
        ]),
      ]),
      [
        "dict",
        [
          [1, "a"],
          [2, "b"],
        ],
      ],
    );
  });

  it("an aborted call's name is AbortError and a timed-out one's TimeoutError; the codes stay", async () => {
    const ext = await load();
    const controller = new AbortController();
    const pending = ext.call("wait", [30], { signal: controller.signal });
    controller.abort(new Error("user left"));
    const aborted = await pending.catch((e: unknown) => e);
    assert.ok(aborted instanceof CallAbortedError);
    assert.equal(aborted.name, "AbortError");
    assert.equal(aborted.code, "ERR_PYISOLATE_ABORTED");
    const timedOut = await ext.call("wait", [30], { timeoutMs: 50 }).catch((e: unknown) => e);
    assert.ok(timedOut instanceof CallAbortedError);
    assert.equal(timedOut.name, "TimeoutError");
    assert.equal(timedOut.code, "ERR_PYISOLATE_TIMEOUT");
  });
});

describe("bounded messages", () => {
  it("a crash with long stderr lines keeps the message short and the last line first in view; stderrTail has all", () => {
    const tail = [
      ...Array.from({ length: 19 }, (_, i) => `line ${i} ${"x".repeat(64 * 1024)}`),
      "ValueError: the real reason",
    ];
    const error = new ExtensionCrashedError("big", { exitCode: 1, signal: null, stderrTail: tail });
    assert.ok(error.message.length <= MAX_MESSAGE_CHARS, `${error.message.length}`);
    assert.match(error.message, /^extension "big" exited with code 1; its last stderr lines:\n/);
    assert.match(error.message, /ValueError: the real reason$/);
    assert.equal(error.stderrTail.length, 20);
  });

  it("a load error around a crash keeps both ends: its reason first and the crash's last stderr line", () => {
    const tail = [
      ...Array.from({ length: 30 }, (_, i) => `  File "x.py", line ${i}, in f ${"z".repeat(40)}`),
      "RuntimeError: GPU driver is on fire",
    ];
    const crash = new ExtensionCrashedError("x", { exitCode: 7, signal: null, stderrTail: tail });
    const error = new ExtensionLoadError("x", crash.message, { cause: crash });
    assert.ok(error.message.length <= MAX_MESSAGE_CHARS);
    assert.match(
      error.message,
      /^extension "x" failed to load: extension "x" exited with code 7; its last stderr lines:\n/,
    );
    assert.match(error.message, /\n {2}RuntimeError: GPU driver is on fire$/);
  });

  it("a Python exception with a huge message is cut in `message` and whole in `remoteMessage`", () => {
    const huge = "y".repeat(10_000);
    const error = new RemoteError({ type: "ValueError", message: huge, traceback: "" });
    assert.ok(error.message.length <= MAX_MESSAGE_CHARS);
    assert.match(error.message, /^ValueError: y+ … \(\d+ more characters\)$/);
    assert.equal(error.remoteMessage, huge);
  });

  it("installerReason takes uv's reason with its cause, and pip's last ERROR line", () => {
    assert.equal(
      installerReason([
        "Using Python 3.11",
        "  × No solution found when resolving dependencies:",
        "  ╰─▶ Because x was not found, we can conclude y.",
      ]),
      "No solution found when resolving dependencies: Because x was not found, we can conclude y.",
    );
    assert.equal(
      installerReason([
        "Collecting x",
        "ERROR: Could not find a version that satisfies the requirement x",
        "ERROR: No matching distribution found for x",
      ]),
      "No matching distribution found for x",
    );
    assert.equal(installerReason(["all went well"]), undefined);
  });
});

describe("strict options", () => {
  it("a misspelled manager option is refused with the closest name", () => {
    assert.throws(
      () => new ExtensionManager({ venvRoot: SHARED_VENV_ROOT, forwardOutputs: false } as never),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.key === "forwardOutputs" &&
        /^unknown option "forwardOutputs"; did you mean "forwardOutput"\?$/.test(e.message),
    );
    assert.throws(
      () => new ExtensionManager({ venvroot: SHARED_VENV_ROOT } as never),
      (e: unknown) => e instanceof ConfigError && /did you mean "venvRoot"\?/.test(e.message),
    );
    assert.throws(
      () => new ExtensionManager({ venvRoot: SHARED_VENV_ROOT, banana: 1 } as never),
      (e: unknown) => e instanceof ConfigError && e.message === 'unknown option "banana"',
    );
    assert.throws(
      () => new ExtensionManager({ venvRoot: SHARED_VENV_ROOT, logger: {} as never }),
      (e: unknown) => e instanceof ConfigError && e.key === "logger",
    );
  });

  it("a misspelled load option, or sandbox option, is refused with the closest name before anything is built", async () => {
    const manager = makeManager();
    try {
      await assert.rejects(
        manager.load({ name: "native_output_typo", modulePath: PRINT, dependancies: [] } as never),
        (e: unknown) =>
          e instanceof ConfigError && e.key === "dependancies" && /did you mean "dependencies"\?/.test(e.message),
      );
      await assert.rejects(
        manager.load({ name: "native_output_typo", modulePath: PRINT, sandbox: { netwrok: true } } as never),
        (e: unknown) =>
          e instanceof ConfigError &&
          e.key === "sandbox.netwrok" &&
          /did you mean "sandbox\.network"\?/.test(e.message),
      );
      await assert.rejects(
        manager.load({ name: "native_output_typo", modulePath: PRINT, logger: { info: () => {} } } as never),
        (e: unknown) =>
          e instanceof ConfigError &&
          e.key === "logger" &&
          /^logger must be an object with debug, info, warn and error methods/.test(e.message),
      );
    } finally {
      await manager.close();
    }
  });
});

describe("one Python version policy", () => {
  it("a Python 3.8 is refused for a venv, and doctor calls it unsupported, both naming 3.9", async () => {
    const dir = mkdtempSync(join(tmpdir(), "native-output-py38-"));
    try {
      // An interpreter that answers the probe as a 3.8 would (the probe prints the version and the real path).
      const fake = join(dir, "python3.8");
      writeFileSync(fake, `#!/bin/sh\nprintf '3.8.18\\n${fake}\\n'\n`);
      chmodSync(fake, 0o755);
      await assert.rejects(
        resolvePython(fake),
        (e: unknown) => e instanceof ConfigError && e.key === "python" && /need Python 3\.9 or newer/.test(e.message),
      );
      assert.equal(pythonSupport("3.8.18").support, "unsupported");
      assert.match(pythonSupport("3.8.18").note, /3\.9 or newer/);
      assert.equal(pythonSupport("3.9.2").support, "supported");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
