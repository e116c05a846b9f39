#!/usr/bin/env node
// The long soak (issue 8): 16 extensions under a restart policy and limits, bytes and tensors in flight, random
// SIGKILLs and limit kills, for minutes; prints the figures.
//
// Usage: node scripts/soak.mjs [--minutes 5] [--extensions 16] [--concurrency 32] [--kill-ms 200-600] [--limit-share 0.25]
// Exits 1 when a call was lost, duplicated, left hanging or rejected with an error other than the kill's own, when a
// limit was not enforced, when an extension did not come back, or when fds, memfds, RSS (5%) or processes were left
// over. test/resilience-soak.test.ts is the 30 s version.

import { mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { register } from "tsx/esm/api";

register();
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "5" },
    extensions: { type: "string", default: "16" },
    concurrency: { type: "string", default: "32" },
    "kill-ms": { type: "string", default: "200-600" },
    "limit-share": { type: "string", default: "0.25" },
  },
});
const { runSoak } = await import("../test/resilience-soak-core.ts");
const { NUMPY } = await import("../test/tensor-helpers.ts");
const [lo, hi] = values["kill-ms"].split("-").map(Number);
const venvRoot = path.join(tmpdir(), "pyisolate-test-venvs");
mkdirSync(venvRoot, { recursive: true });
const durationMs = Number(values.minutes) * 60_000;
const started = Date.now();
const report = await runSoak({
  venvRoot,
  modulePath: path.join(ROOT, "test", "fixtures", "extensions", "res_fuzz_soak"),
  extensions: Number(values.extensions),
  durationMs,
  warmupMs: Math.min(30_000, durationMs / 10),
  concurrency: Number(values.concurrency),
  killEveryMs: [lo, hi],
  limitShare: Number(values["limit-share"]),
  tensorExtensions: 2,
  numpy: NUMPY,
  log: (line) => console.log(`soak: ${line}`),
});
const mib = (n) => (n / 2 ** 20).toFixed(1);
const problems = [];
if (report.unexpected.length) problems.push(`rejections other than the kill's: ${report.unexpected.join("; ")}`);
if (report.limitMissed) problems.push(`${report.limitMissed} limit calls returned (limit not enforced)`);
if (report.duplicated) problems.push(`${report.duplicated} calls settled twice`);
if (report.hanging) problems.push(`${report.hanging} calls hanging`);
if (report.servingAfter !== Number(values.extensions))
  problems.push(`only ${report.servingAfter} extensions serve after`);
if (report.orphans.length) problems.push(`orphans: ${report.orphans.join("; ")}`);
if (report.memfdsLeft) problems.push(`${report.memfdsLeft} memfds left`);
if (Math.abs(report.end.fds - report.start.fds) > Math.ceil(report.start.fds * 0.05))
  problems.push(`fds ${report.start.fds} -> ${report.end.fds}`);
if (report.end.rss > report.start.rss * 1.05)
  problems.push(`rss ${mib(report.start.rss)} -> ${mib(report.end.rss)} MiB`);
console.log(
  [
    `soak summary (${((Date.now() - started) / 60_000).toFixed(1)} min wall, ${(report.elapsedMs / 1000).toFixed(0)} s of calls and kills):`,
    `  calls ${report.calls}: ok ${report.ok}, errors ${JSON.stringify(report.errors)}, unexpected ${report.unexpected.length}, duplicated ${report.duplicated}, hanging ${report.hanging}`,
    `  ${(report.calls / (report.elapsedMs / 1000)).toFixed(0)} calls/s; tensor calls ${report.tensorCalls}, bytes calls ${report.bytesCalls}`,
    `  SIGKILLs ${report.sigkills}, limit calls ${report.limitCalls} (stopped by ${JSON.stringify(report.limitStops)}, not stopped ${report.limitMissed}), restarts by policy ${report.restarts}, serving after ${report.servingAfter}/${values.extensions}`,
    `  host rss ${mib(report.start.rss)} -> ${mib(report.end.rss)} MiB, heap ${mib(report.start.heapUsed)} -> ${mib(report.end.heapUsed)} MiB, fds ${report.start.fds} -> ${report.end.fds}, memfds ${report.start.memfds} -> ${report.end.memfds}, left after close ${report.memfdsLeft}`,
    `  orphan processes: ${report.orphans.length}`,
    problems.length ? `FAILED: ${problems.join(", ")}` : "soak: OK",
  ].join("\n"),
);
process.exitCode = problems.length ? 1 : 0;
