// The host's switches for the guest's supervisor and process filter are the host's alone: whatever env the launch is
// handed (an extension's config file included) cannot turn them off, and each backend gets the ones it needs.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildLaunchCommand, PROCESS_FILTER_ENV, SUPERVISE_ENV } from "../src/process/launch.js";
import { LANDLOCK_ENV } from "../src/sandbox/landlock-policy.js";
import type { SandboxLaunch } from "../src/sandbox/prepare.js";

/** What a hostile config file would try: no supervisor, no filter, its own Landlock rules (none at all). */
const HOSTILE_ENV = { [SUPERVISE_ENV]: "0", [PROCESS_FILTER_ENV]: "0", [LANDLOCK_ENV]: "{}", OMP_NUM_THREADS: "2" };

function envFor(sandbox: SandboxLaunch): Record<string, string> {
  return buildLaunchCommand({ pythonPath: "/venv/bin/python", modulePath: "/ext", env: HOSTILE_ENV, sandbox }).env;
}

describe("the guest's supervisor and process filter switches", () => {
  it("no sandbox: the supervisor is on whatever the env said, and no filter or rules ride along", () => {
    const env = envFor({ backend: "none" });
    assert.equal(env[SUPERVISE_ENV], "1");
    assert.equal(env[PROCESS_FILTER_ENV], undefined);
    assert.equal(env[LANDLOCK_ENV], undefined, "the config file's rules are dropped");
    assert.equal(env.OMP_NUM_THREADS, "2", "the rest of the env is untouched");
  });

  it("Landlock: the supervisor is on and the rules are the host's", () => {
    const env = envFor({ backend: "landlock", rules: '{"read_only":[]}', fds: [] });
    assert.equal(env[SUPERVISE_ENV], "1");
    assert.equal(env[LANDLOCK_ENV], '{"read_only":[]}');
    assert.equal(env[PROCESS_FILTER_ENV], undefined, "the filter is part of the Landlock rules there");
  });

  it("bwrap: the process filter is on; no supervisor (its PID namespace holds the tree)", () => {
    for (const backend of ["bwrap", "bwrap-degraded"] as const) {
      const env = envFor({ backend, bwrapPath: "/usr/bin/bwrap", bwrapArgs: [], fds: [] });
      assert.equal(env[PROCESS_FILTER_ENV], "1", backend);
      assert.equal(env[SUPERVISE_ENV], undefined, backend);
      assert.equal(env[LANDLOCK_ENV], undefined, backend);
    }
  });
});
