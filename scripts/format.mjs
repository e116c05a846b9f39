#!/usr/bin/env node
// Formats (--write) or checks (--check) the code: Prettier for TypeScript and JavaScript, `ruff format` for Python.
// Which files: scripts/format-scope.json (the listed ones, or the whole tree once `all` is true); --all overrides.

import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
/** The code Prettier formats; .prettierignore and .gitignore take out builds and generated files. */
const TS_GLOBS = ["**/*.ts", "**/*.cts", "**/*.mts", "**/*.js", "**/*.mjs"];
/** The Python ruff lints (package.json "lint"); test fixtures are extensions' code, left as their authors wrote it. */
const PY_DIRS = ["python", "scripts", "bench"];
const IS_TS = /\.(c|m)?(t|j)s$/;

/** Pure: the Prettier and ruff argument lists for a mode and a scope. */
export function formatPlan(mode, scope) {
  const files = scope.all ? undefined : scope.files;
  const prettierTargets = files ? files.filter((f) => IS_TS.test(f)) : TS_GLOBS;
  const ruffTargets = files ? files.filter((f) => f.endsWith(".py")) : PY_DIRS;
  const plan = [];
  if (prettierTargets.length > 0) {
    plan.push([
      "node_modules/.bin/prettier",
      mode === "check" ? "--check" : "--write",
      "--log-level=warn",
      "--no-error-on-unmatched-pattern",
      ...prettierTargets,
    ]);
  }
  if (ruffTargets.length > 0) plan.push(["ruff", "format", ...(mode === "check" ? ["--check"] : []), ...ruffTargets]);
  return plan;
}

function main(argv) {
  const mode = argv.includes("--write") ? "write" : "check";
  const scope = JSON.parse(readFileSync(path.join(root, "scripts", "format-scope.json"), "utf8"));
  if (argv.includes("--all")) scope.all = true;
  let failed = false;
  for (const [command, ...args] of formatPlan(mode, scope)) {
    const run = spawnSync(command, args, { cwd: root, stdio: "inherit" });
    if (run.error) throw new Error(`${command} could not run: ${run.error.message}`);
    failed ||= run.status !== 0;
  }
  if (failed && mode === "check") console.error("format check failed: run `npm run format` and commit the result");
  process.exitCode = failed ? 1 : 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === new URL(import.meta.url).pathname) main(process.argv.slice(2));
