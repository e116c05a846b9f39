// The short soak (30 s; scripts/soak.mjs runs it for minutes): 16 extensions, bytes and tensors in flight, random
// SIGKILLs; every call settles exactly once with a value or a typed error, and nothing of a dead extension is left.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { nativeStatus } from "../src/tensor/native.js";
import { fixture, SHARED_VENV_ROOT } from "./helpers.js";
import { runSoak } from "./resilience-soak-core.js";
import { NUMPY } from "./tensor-helpers.js";

describe("soak: 16 extensions under random SIGKILLs for 30 s", { timeout: 900_000 }, () => {
  it("settles every call once, brings every killed extension back, leaks no fd, memfd, memory or process", async () => {
    const report = await runSoak({
      venvRoot: SHARED_VENV_ROOT, modulePath: fixture("res_fuzz_soak"), extensions: 16, durationMs: 30_000, warmupMs: 8_000, concurrency: 32,
      killEveryMs: [200, 600], tensorExtensions: 2, numpy: NUMPY, log: (line) => console.log(`# soak: ${line}`),
    });
    assert.deepEqual(report.untyped, [], "every rejection is a typed PyIsolateError");
    assert.equal(report.duplicated, 0, "no call settled twice");
    assert.equal(report.hanging, 0, "no call left hanging");
    assert.ok(report.kills >= 20, `only ${report.kills} kills`);
    assert.ok(report.reloads > 0 && report.ok > 0 && report.tensorCalls > 0 && report.bytesCalls > 0, JSON.stringify(report));
    // The control of "typed": the kills really cut calls short.
    assert.ok((report.typed.ExtensionCrashedError ?? 0) > 0, JSON.stringify(report.typed));
    assert.equal(report.servingAfter, 16, "every killed extension serves again");
    assert.deepEqual(report.orphans, [], "no extension process outlives the manager");
    assert.equal(report.memfdsLeft, 0, "no memfd left in the host");
    if (nativeStatus.available) assert.ok(report.start.memfds >= 0);
    assert.ok(Math.abs(report.end.fds - report.start.fds) <= Math.ceil(report.start.fds * 0.05), `fds ${report.start.fds} -> ${report.end.fds}`);
    assert.ok(report.end.rss <= report.start.rss * 1.05, `rss ${report.start.rss} -> ${report.end.rss}`);
  });
});
