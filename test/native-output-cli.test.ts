// `pyisolate run` as a pipeline stage: exactly one JSON document on stdout, tensor values in it, progress on stderr.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { it } from "node:test";
import { fixture, SHARED_VENV_ROOT, TEST_DIR } from "./helpers.js";
import { NUMPY } from "./tensor-helpers.js";

const CLI = join(TEST_DIR, "..", "src", "cli.ts");
const NUMPY_ARGS = [
  "--venv-root",
  SHARED_VENV_ROOT,
  "--name",
  "native_output_np",
  ...NUMPY.flatMap((dep) => ["--dep", dep]),
];

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI; with `consumer`, its stdout is piped into `node -e <consumer>`, whose own output is returned too. */
async function cli(args: string[], consumer?: string): Promise<{ cli: Ran; consumer?: Ran }> {
  const env = { ...process.env };
  delete env.PYISOLATE_LOG_LEVEL;
  const child = spawn(process.execPath, ["--import", "tsx", CLI, ...args], {
    cwd: TEST_DIR,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const collect = (proc: ReturnType<typeof spawn>): Promise<Ran> => {
    let stdout = "";
    let stderr = "";
    proc.stdout?.on("data", (chunk: Buffer) => (stdout += chunk));
    proc.stderr!.on("data", (chunk: Buffer) => (stderr += chunk));
    return once(proc, "close").then(([code]) => ({ code: code as number | null, stdout, stderr }));
  };
  if (consumer === undefined) return { cli: await collect(child) };
  const reader = spawn(process.execPath, ["-e", consumer], { stdio: ["pipe", "pipe", "pipe"] });
  child.stdout!.pipe(reader.stdin!);
  const [ran, read] = await Promise.all([collect(child), collect(reader)]);
  return { cli: ran, consumer: read };
}

it("pyisolate run | node -e JSON.parse reads one document holding a numpy result's values", async () => {
  const parse = 'const v = JSON.parse(require("fs").readFileSync(0, "utf8")); process.stdout.write(JSON.stringify(v))';
  const { cli: ran, consumer } = await cli(["run", fixture("native_output_print"), "matrix", ...NUMPY_ARGS], parse);
  assert.equal(ran.code, 0, ran.stderr);
  assert.equal(consumer!.code, 0, consumer!.stderr);
  assert.deepEqual(JSON.parse(consumer!.stdout), [
    [0, 1.5, 3],
    [4.5, 6, 7.5],
  ]);
  // What the extension printed while loading went to stderr, with its name.
  assert.match(ran.stderr, /^\[native_output_np\] loaded and printing on stdout$/m);
});

it("pyisolate run --raw gives tensors as descriptors, inside the rest of the value", async () => {
  const { cli: ran } = await cli(["run", fixture("native_output_print"), "mixed", "--raw", ...NUMPY_ARGS]);
  assert.equal(ran.code, 0, ran.stderr);
  const value = JSON.parse(ran.stdout);
  assert.equal(value.name, "m");
  assert.equal(value.n, 7);
  assert.deepEqual(
    { dtype: value.values.tensor.dtype, shape: value.values.tensor.shape, nbytes: value.values.tensor.nbytes },
    { dtype: "int32", shape: [3], nbytes: 12 },
  );
});

it("pyisolate run --quiet writes nothing on stderr, and the result alone on stdout", async () => {
  const { cli: ran } = await cli([
    "run",
    fixture("native_output_print"),
    "shout",
    '["quiet"]',
    "--quiet",
    ...NUMPY_ARGS,
  ]);
  assert.equal(ran.code, 0, ran.stderr);
  assert.equal(ran.stderr, "");
  assert.equal(ran.stdout, '"QUIET"\n');
});

it("pyisolate run with a dependency that does not exist: nothing on stdout, the reason first on stderr, then uv's lines", async () => {
  const { cli: ran } = await cli([
    "run",
    fixture("native_output_print"),
    "shout",
    '["x"]',
    "--venv-root",
    SHARED_VENV_ROOT,
    "--name",
    "native_output_cli_fail",
    "--dep",
    "this-package-does-not-exist-pyisolate==1.0",
    "--quiet",
  ]);
  assert.equal(ran.code, 1);
  assert.equal(ran.stdout, "");
  const [first, ...rest] = ran.stderr.trimEnd().split("\n");
  assert.match(
    first!,
    /^pyisolate: installing dependencies with (uv|pip)\b.* failed \(exited with code 1\): .*this-package-does-not-exist-pyisolate/,
  );
  assert.ok(rest.length > 0 && rest.every((line) => line.startsWith("  | ")), ran.stderr);
});
