#!/usr/bin/env node
// Runs the fuzz properties (test/resilience-fuzz*.test.ts, python/tests/test_fuzz_guest.py) longer than `npm test` does.
//
// Usage: node scripts/fuzz.mjs [--runs N] [--seconds S] [--seed N] [--only ts|python]
//   --runs     examples per property (default 20000; npm test runs a few hundred)
//   --seconds  time budget per property on the TypeScript side, and for all of the Python side (default 60)
//   --seed     the seed (default: a fresh one, printed so that a failure can be replayed with it)
// A failing property prints its counterexample; a crash of the whole process leaves the config input in flight in
// the file printed at the end.

import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "20000" },
    seconds: { type: "string", default: "60" },
    seed: { type: "string" },
    only: { type: "string" },
  },
});
const runs = Number(values.runs);
const seconds = Number(values.seconds);
const firstSeed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
if (!Number.isSafeInteger(runs) || runs < 1 || !(seconds > 0) || !Number.isSafeInteger(firstSeed)) {
  console.error("fuzz: --runs must be a positive integer, --seconds a positive number, --seed an integer");
  process.exit(2);
}
const last = path.join(mkdtempSync(path.join(tmpdir(), "pyisolate-fuzz-")), "last-input");
const env = { ...process.env, PYISOLATE_FUZZ_RUNS: String(runs), PYISOLATE_FUZZ_LAST: last };
let failed = false;

function typescript() {
  const files = readdirSync(path.join(ROOT, "test"))
    .filter((f) => /^resilience-fuzz.*\.test\.ts$/.test(f))
    .map((f) => path.join("test", f));
  console.log(`fuzz: ${files.length} TypeScript files, ${runs} runs or ${seconds} s per property, seed ${firstSeed}`);
  const r = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-reporter=spec", ...files], {
    cwd: ROOT,
    stdio: "inherit",
    env: { ...env, PYISOLATE_FUZZ_SEED: String(firstSeed), PYISOLATE_FUZZ_SECONDS: String(seconds) },
  });
  if (r.status !== 0) failed = true;
}

/** hypothesis has no time budget of its own: one run per seed, seeds in a row, until the budget is spent. */
function python() {
  const deadline = Date.now() + seconds * 1000;
  for (let seed = firstSeed, round = 0; round === 0 || Date.now() < deadline; seed++, round++) {
    console.log(`fuzz: the guest's properties, ${runs} examples each, seed ${seed}`);
    const r = spawnSync("python3", ["-m", "unittest", "-v", "tests.test_fuzz_guest"], {
      cwd: path.join(ROOT, "python"),
      stdio: "inherit",
      env: { ...env, PYISOLATE_FUZZ_SEED: String(seed) },
    });
    if (r.status !== 0) {
      failed = true;
      return;
    }
  }
}

if (values.only !== "python") typescript();
if (values.only !== "ts") python();
if (failed && existsSync(last))
  console.log(`fuzz: the last config input tried is in ${last} (${readFileSync(last).length} bytes)`);
console.log(failed ? "fuzz: FAILED (replay with --seed " + firstSeed + ")" : "fuzz: no failure");
process.exitCode = failed ? 1 : 0;
