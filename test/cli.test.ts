// The command line, run as a user would: `pyisolate run` and `pyisolate doctor`.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { it } from "node:test";
import { promisify } from "node:util";
import { fixture, SHARED_VENV_ROOT, TEST_DIR } from "./helpers.js";

const exec = promisify(execFile);
const CLI = join(TEST_DIR, "..", "src", "cli.ts");

function cli(args: string[]) {
  return exec(process.execPath, ["--import", "tsx", CLI, ...args], { cwd: TEST_DIR });
}

it("pyisolate run calls one method and prints its result as JSON", async () => {
  const { stdout } = await cli([
    "run",
    fixture("echo_ext"),
    "sync_add",
    "[2, 40]",
    "--venv-root",
    SHARED_VENV_ROOT,
    "--name",
    "cli_echo",
    "--quiet",
  ]);
  assert.equal(JSON.parse(stdout), 42);
});

it("pyisolate run reports a Python error with its type and exits 1", async () => {
  const error = await cli([
    "run",
    fixture("echo_ext"),
    "raise_value_error",
    '["nope"]',
    "--venv-root",
    SHARED_VENV_ROOT,
    "--name",
    "cli_echo",
    "--quiet",
  ]).catch((e: { code: number; stderr: string }) => e);
  assert.equal((error as { code: number }).code, 1);
  assert.match((error as { stderr: string }).stderr, /ValueError: nope/);
});

it("pyisolate doctor prints the matrix, and --json the same as data", async () => {
  const text = await cli(["doctor"]);
  assert.match(text.stdout, /Sandbox/);
  assert.match(text.stdout, /Tensor IPC/);
  const report = JSON.parse((await cli(["doctor", "--json"])).stdout);
  assert.equal(typeof report, "object");
  assert.ok(JSON.stringify(report).includes("sandbox"));
});
