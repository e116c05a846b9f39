// The restart and health options: pure policy decisions, validation that names the key, and what an extension's
// pyisolate.yaml may say of them (narrow restarts, never touch health).

import assert from "node:assert/strict";
import { once } from "node:events";
import { after, describe, it } from "node:test";
import { ConfigError, ExtensionCrashedError } from "../src/index.js";
import { validateExtensionOptions } from "../src/config/validate.js";
import { resolveHealthPolicy } from "../src/lifecycle/health.js";
import {
  narrowRestartPolicy,
  nextRestartDelay,
  resolveRestartPolicy,
  RESTART_DEFAULTS,
} from "../src/lifecycle/restart-policy.js";
import { fixture, makeManager } from "./helpers.js";

describe("the restart policy's decisions", () => {
  const policy = resolveRestartPolicy({ maxRestarts: 2, windowMs: 1000, backoffMs: 30 });

  it("restarts after backoffMs while fewer than maxRestarts fall inside windowMs", () => {
    assert.equal(nextRestartDelay(policy, [], 5000), 30);
    assert.equal(nextRestartDelay(policy, [4500], 5000), 30);
    assert.equal(nextRestartDelay(policy, [4500, 4900], 5000), undefined, "two restarts in the last second: spent");
    assert.equal(nextRestartDelay(policy, [3000, 4900], 5000), 30, "the older one left the window");
    assert.equal(nextRestartDelay(resolveRestartPolicy({ maxRestarts: 0 }), [], 0), undefined);
  });

  it("fills defaults, and lets a file only narrow the code's policy, never turn it on", () => {
    assert.deepEqual(resolveRestartPolicy({}), RESTART_DEFAULTS);
    assert.equal(narrowRestartPolicy(undefined, { maxRestarts: 5 }), undefined);
    assert.deepEqual(
      narrowRestartPolicy(policy, {
        maxRestarts: 9,
        windowMs: 10,
        backoffMs: 5000,
        queueCalls: false,
        queueTimeoutMs: 10,
      }),
      {
        maxRestarts: 2,
        windowMs: 1000,
        backoffMs: 5000,
        queueCalls: false,
        queueTimeoutMs: 10,
      },
    );
    assert.equal(narrowRestartPolicy(policy, { maxRestarts: 0 }), undefined, "maxRestarts: 0 turns it off");
  });

  it("leaves health off by default and with false, and takes the defaults with true", () => {
    assert.equal(resolveHealthPolicy(undefined), undefined);
    assert.equal(resolveHealthPolicy(false), undefined);
    assert.deepEqual(resolveHealthPolicy(true), { intervalMs: 1000, timeoutMs: 30_000 });
    assert.deepEqual(resolveHealthPolicy({ timeoutMs: 5000 }), { intervalMs: 1000, timeoutMs: 5000 });
  });
});

describe("restart and health options", () => {
  const base = { name: "x", modulePath: fixture("res_restart_ext") };
  const cases: [string, object, string][] = [
    ["an unknown restart key", { restart: { retries: 3 } }, "restart.retries"],
    ["a negative maxRestarts", { restart: { maxRestarts: -1 } }, "restart.maxRestarts"],
    ["a fractional backoffMs", { restart: { backoffMs: 1.5 } }, "restart.backoffMs"],
    ["a queueCalls that is not a boolean", { restart: { queueCalls: "yes" } }, "restart.queueCalls"],
    ["a restart that is not an object", { restart: true }, "restart"],
    ["health that is a number", { health: 5 }, "health"],
    ["a health interval under 10 ms", { health: { intervalMs: 1 } }, "health.intervalMs"],
    ["a health timeout shorter than its interval", { health: { intervalMs: 500, timeoutMs: 100 } }, "health.timeoutMs"],
    ["an unknown health key", { health: { every: 5 } }, "health.every"],
  ];
  for (const [what, extra, key] of cases) {
    it(`refuses ${what} with a ConfigError naming ${key}`, () => {
      assert.throws(
        () => validateExtensionOptions({ ...base, ...extra } as never),
        (error: unknown) => {
          assert.ok(error instanceof ConfigError, String(error));
          assert.equal(error.key, key);
          return true;
        },
      );
    });
  }
});

describe("an extension's pyisolate.yaml", () => {
  const manager = makeManager();
  after(() => manager.close());

  it("may turn the host's restart policy off (maxRestarts: 0): a crash then stays a crash", async () => {
    const ext = await manager.load({
      name: "res_restart_yaml_narrow",
      modulePath: fixture("res_restart_yaml_narrow"),
      sandbox: { mode: "disabled" },
      restart: { maxRestarts: 5 },
    });
    const state = once(ext, "stateChange");
    await assert.rejects(ext.call("die", [3]), ExtensionCrashedError);
    assert.deepEqual(await state, ["crashed"]);
  });

  it("may not set health: the load fails with a ConfigError naming the key and the file", async () => {
    const error = await manager
      .load({
        name: "res_restart_yaml_health",
        modulePath: fixture("res_restart_yaml_health"),
        sandbox: { mode: "disabled" },
      })
      .catch((e: unknown) => e);
    assert.ok(error instanceof ConfigError, String(error));
    assert.equal(error.key, "health");
    assert.match(error.file ?? "", /res_restart_yaml_health\/pyisolate\.yaml$/);
  });
});
