// Pins the public surface: a change to the exported names must be a reviewed diff of this list.

import assert from "node:assert/strict";
import { it } from "node:test";
import * as api from "../src/index.js";

it("exports exactly the curated names", () => {
  assert.deepEqual(Object.keys(api).sort(), [
    "CallAbortedError", "ConfigError", "CudaTensor", "DTYPES", "EnvironmentBuildError", "Extension", "ExtensionClosedError",
    "ExtensionCrashedError", "ExtensionLimitError", "ExtensionLoadError", "ExtensionManager", "ExtensionUnresponsiveError",
    "PROTOCOL_VERSION", "ProtocolError",
    "PyIsolateError", "RESTRICTION_MODELS", "RUNTIME_VERSION", "RemoteError", "SandboxUnavailableError", "Tensor", "UnknownMethodError", "callingExtension", "createConsoleLogger",
    "detectSandbox", "formatDoctorJson", "formatDoctorText", "kwargs", "liveCudaExports", "liveSegments", "runDoctor",
  ]);
});

it("gives every error a stable name and code", () => {
  const error = new api.ConfigError("bad", { key: "name" });
  assert.equal(error.name, "ConfigError");
  assert.equal(error.code, "ERR_PYISOLATE_CONFIG");
  assert.ok(error instanceof api.PyIsolateError);
});

it("names the shared runtime types (compile-time check)", () => {
  const options: api.SharedRuntimeOptions = { dependencies: ["six"], python: "3.11", installer: "pip" };
  const manager: api.ManagerOptions = { venvRoot: "/tmp/x", sharedRuntimes: { base: options } };
  const link: api.SharedRuntimeLink | undefined = ({} as api.Environment).sharedRuntime;
  const load: api.ExtensionOptions = { name: "x", modulePath: ".", sharedRuntime: "base" };
  assert.equal(link, undefined);
  assert.ok(manager.sharedRuntimes?.base && load.sharedRuntime === "base");
});

it("names the restart and health option types (compile-time check)", () => {
  const restart: api.RestartOptions = { maxRestarts: 2, windowMs: 1000, backoffMs: 10, queueCalls: false, queueTimeoutMs: 50 };
  const health: api.HealthOptions = { intervalMs: 100, timeoutMs: 1000 };
  const load: api.ExtensionOptions = { name: "x", modulePath: ".", restart, health };
  const off: api.ExtensionOptions = { name: "x", modulePath: ".", health: false };
  const error = new api.ExtensionUnresponsiveError("x", "no-answer", 1200, 1000);
  assert.equal(error.code, "ERR_PYISOLATE_UNRESPONSIVE");
  assert.ok(load.restart && off.health === false && error instanceof api.PyIsolateError);
});
