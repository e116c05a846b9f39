// Pins the public surface: a change to the exported names must be a reviewed diff of this list.

import assert from "node:assert/strict";
import { it } from "node:test";
import * as api from "../src/index.js";

it("exports exactly the curated names", () => {
  assert.deepEqual(Object.keys(api).sort(), [
    "CallAbortedError",
    "ConfigError",
    "CudaTensor",
    "DTYPES",
    "EnvironmentBuildError",
    "Extension",
    "ExtensionClosedError",
    "ExtensionCrashedError",
    "ExtensionLimitError",
    "ExtensionLoadError",
    "ExtensionManager",
    "ExtensionPool",
    "ExtensionUnresponsiveError",
    "PROTOCOL_VERSION",
    "ProtocolError",
    "PyIsolateError",
    "RESTRICTION_MODELS",
    "RUNTIME_VERSION",
    "RayClusterError",
    "RemoteError",
    "SandboxUnavailableError",
    "Tensor",
    "UnknownMethodError",
    "callingExtension",
    "createConsoleLogger",
    "detectSandbox",
    "formatDoctorJson",
    "formatDoctorText",
    "kwargs",
    "liveCudaExports",
    "liveSegments",
    "runDoctor",
  ]);
});

it("gives every error a stable name and code", () => {
  const error = new api.ConfigError("bad", { key: "name" });
  assert.equal(error.name, "ConfigError");
  assert.equal(error.code, "ERR_PYISOLATE_CONFIG");
  assert.ok(error instanceof api.PyIsolateError);
  const unresponsive = new api.ExtensionUnresponsiveError("x", "no-answer", 1200, 1000);
  assert.equal(unresponsive.name, "ExtensionUnresponsiveError");
  assert.equal(unresponsive.code, "ERR_PYISOLATE_UNRESPONSIVE");
  assert.ok(unresponsive instanceof api.PyIsolateError);
});

// The exported option types are checked at compile time by test/api-surface.types.ts (npm run typecheck).
