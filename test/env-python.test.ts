// Interpreter discovery: verified by running each candidate, with a clear ConfigError listing what was found.

import assert from "node:assert/strict";
import { realpathSync } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { ConfigError } from "../src/errors.js";
import { resolvePython } from "../src/env/builder.js";
import { probePython } from "../src/env/python.js";

describe("resolvePython", () => {
  it("defaults to python3 on PATH and reports its real path and full version", async () => {
    const p = await resolvePython(undefined);
    assert.match(p.version, /^3\.\d+\.\d+$/);
    assert.equal(p.path, realpathSync(p.path));
    const again = await probePython(p.path);
    assert.deepEqual(again, p);
  });

  it("accepts a path to an interpreter, and explains one that does not run", async () => {
    const p = await resolvePython(undefined);
    assert.deepEqual(await resolvePython(p.path), p);
    await assert.rejects(
      resolvePython("/nonexistent/bin/python3"),
      (err: unknown) => err instanceof ConfigError && err.key === "python" && /could not be run/.test(err.message),
    );
  });

  it("resolves a version to a matching interpreter (3.9 from pyenv even though its shim fails)", async (t) => {
    const p = await resolvePython(undefined);
    const [major, minor] = p.version.split(".");
    const same = await resolvePython(`${major}.${minor}`);
    assert.ok(same.version.startsWith(`${major}.${minor}.`), same.version);
    const pyenv39 = await probePython(
      path.join(process.env.PYENV_ROOT ?? path.join(homedir(), ".pyenv"), "versions", "3.9.18", "bin", "python3"),
    );
    if (!pyenv39) return t.skip("no pyenv Python 3.9.18 on this machine");
    assert.deepEqual(await resolvePython("3.9"), pyenv39);
    assert.deepEqual(await resolvePython("3.9.18"), pyenv39);
  });

  it("a version that is not installed is a ConfigError listing the versions found", async () => {
    const err = await resolvePython("3.4").catch((e: unknown) => e);
    assert.ok(err instanceof ConfigError, String(err));
    assert.equal(err.key, "python");
    const p = await resolvePython(undefined);
    assert.match(err.message, /^python 3\.4 requested; found: /);
    assert.ok(err.message.includes(`${p.version} (${p.path})`), err.message);
  });

  it("a command name not on PATH is a ConfigError too", async () => {
    await assert.rejects(
      resolvePython("no-such-python-pyisolate"),
      (err: unknown) => err instanceof ConfigError && /not found on PATH/.test(err.message),
    );
  });
});
