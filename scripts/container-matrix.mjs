#!/usr/bin/env node
// The platform matrix, measured: builds a Debian image without a registry, then in each Docker and podman
// configuration runs doctor, the attacks, a 1 GiB tensor round trip and the demo, and prints one row for each.
//
// Usage: node scripts/container-matrix.mjs [--only NAME,...] [--jobs N] [--record DIR] [--markdown FILE]
//   --jobs N        configurations run at once (default: one per two cores and 4 GiB of memory, at least 1, at most 4)
//   --record DIR    write each configuration's detection evidence and outcome as DIR/<name>.json (test fixtures)
//   --markdown FILE write the matrix and each configuration's doctor output as markdown (docs/platforms.md's part)
// Exits 0 with "skipped: <reason>" when no Docker daemon can be started or the image cannot be built; exits 1
// when a row fails twice (each failure is printed with its configuration and reason). A row that fails once and
// passes on its second try passes, and is printed as flaky with the first try's reason.

import { spawn } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  CONFIGS,
  commandLine,
  containerOptions,
  failures,
  matrixRow,
  renderMarkdown,
  renderTable,
} from "./container-matrix-configs.mjs";
import {
  ensureDocker,
  ensureImage,
  imageKey,
  killArgv,
  preparePodman,
  runArgv,
  sh,
  stopRootlessPause,
} from "./container-matrix-engine.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const IMAGE_SCRIPT = path.join(ROOT, "scripts", "container-matrix-image.sh");
/** What a container needs of the checkout: the built host, the guest runtime, the fixtures, the demo. */
const STAGED = [
  "package.json",
  "tsconfig.json",
  "src",
  "test",
  "python",
  "native",
  "prebuilds",
  "node_modules",
  "dist",
  "examples",
  "scripts",
];
/** One configuration's wall-clock limit: 90 to 150 s measured, so only a hung container reaches it. */
const LIMIT_SECONDS = 1200;

const { values } = parseArgs({
  options: {
    only: { type: "string" },
    jobs: { type: "string" },
    record: { type: "string" },
    markdown: { type: "string" },
  },
});
const defaultJobs = Math.max(
  1,
  Math.min(4, Math.floor(os.availableParallelism() / 2), Math.floor(os.totalmem() / 2 ** 32)),
);
const jobs = values.jobs ? Math.max(1, Number.parseInt(values.jobs, 10) || 1) : defaultJobs;

function stageTree() {
  const dir = mkdtempSync("/var/tmp/pyisolate-matrix-tree-");
  chmodSync(dir, 0o755);
  for (const entry of STAGED) {
    const from = path.join(ROOT, entry);
    if (existsSync(from))
      cpSync(from, path.join(dir, entry), {
        recursive: true,
        verbatimSymlinks: true,
        filter: (s) => !s.includes("__pycache__") && !s.endsWith("/.venvs"),
      });
  }
  sh(["chmod", "-R", "a+rX", dir]);
  return dir;
}

/** The script each container runs: copy the tree, then doctor, the probe and the demo, each timed. */
const CONTAINER_SCRIPT = [
  "set +e",
  't() { echo "$1 $(date +%s)" >> /out/times; }',
  "t start; cp -r /src /tmp/p && cd /tmp/p; t copied",
  "node dist/cli.js doctor > /out/doctor.txt 2>&1; echo $? > /out/doctor.rc; t doctor",
  "timeout 900 node --import tsx scripts/container-matrix-probe.ts /tmp/venvs > /out/probe.txt 2>&1; echo $? > /out/probe.rc; t probe",
  "timeout 900 node examples/demo.mjs > /out/demo.txt 2>&1; echo $? > /out/demo.rc; t demo",
].join("\n");

/** Runs a command, killing the container by name when it outlives the limit. */
function runContainer(config, argv, name) {
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), { cwd: "/", stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    let timedOut = false;
    child.stderr.on("data", (d) => {
      stderr = (stderr + d).slice(-4000);
    });
    const timer = setTimeout(() => {
      timedOut = true;
      sh(killArgv(config.engine, name));
    }, LIMIT_SECONDS * 1000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, timedOut });
    });
  });
}

/** Seconds each phase took inside the container, from the marks the script wrote. */
function phases(text) {
  const marks = text
    .trim()
    .split("\n")
    .map((l) => l.split(" "))
    .filter((p) => p.length === 2)
    .map(([n, s]) => [n, Number(s)]);
  return Object.fromEntries(marks.slice(1).map(([n, s], i) => [n, s - marks[i][1]]));
}

/** One configuration: a fresh container that copies the tree, then runs doctor, the probe and the demo. */
async function runConfig(config, tree, out, tag, attempt) {
  const dir = path.join(out, `${config.name}-${attempt}`);
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o777);
  const name = `pyisolate-matrix-${config.name}-${process.pid}-${attempt}`;
  const argv = runArgv(
    config.engine,
    name,
    containerOptions(config),
    ["-v", `${tree}:/src:ro`, "-v", `${dir}:/out`],
    tag,
    ["sh", "-c", CONTAINER_SCRIPT],
  );
  const started = Date.now();
  const r = await runContainer(config, argv, name);
  const read = (f) => (existsSync(path.join(dir, f)) ? readFileSync(path.join(dir, f), "utf8") : "");
  const probeLines = read("probe.txt").trim().split("\n");
  let probe;
  try {
    probe = JSON.parse(probeLines.at(-1) ?? "");
  } catch {
    probe = {
      error: `the probe printed no result (rc ${read("probe.rc").trim()}): ${probeLines.slice(-3).join(" | ")}`,
    };
  }
  const result = {
    name: config.name,
    command: commandLine(config),
    seconds: Math.round((Date.now() - started) / 1000),
    phases: phases(read("times")),
    dockerRc: r.code,
    dockerErr: r.stderr.trim().split("\n").slice(-3).join(" | "),
    timedOut: r.timedOut,
    limitSeconds: LIMIT_SECONDS,
    doctor: read("doctor.txt"),
    probe,
    demo: { rc: Number(read("demo.rc").trim() || -1), tail: read("demo.txt").trim().split("\n").slice(-4) },
  };
  return { ...result, why: failures(config, result) };
}

/** Runs `tasks` with at most `limit` at once, in order of start. */
async function pool(tasks, limit) {
  const results = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return results;
}

function record(dir, config, result) {
  if (!result.probe.evidence) return;
  mkdirSync(dir, { recursive: true });
  const { evidence, detected, attack, tensors } = result.probe;
  const fixture = {
    description: commandLine(config),
    recorded: new Date().toISOString().slice(0, 10),
    evidence,
    detected,
    observed: { loadBackend: attack.backend ?? null, attack, tensors, demoRc: result.demo.rc },
  };
  writeFileSync(path.join(dir, `${config.name}.json`), `${JSON.stringify(fixture, null, 2)}\n`);
}

/** Why the matrix cannot run on this machine: printed, and the exit status stays 0. */
class Skipped extends Error {}

// Every container runs the built host: without it each row would fail on its demo with ERR_MODULE_NOT_FOUND.
if (!existsSync(path.join(ROOT, "dist", "index.js"))) {
  console.error("container-matrix: dist/ is not built: run `npm run build` (npm test does) first");
  process.exit(2);
}
const docker = ensureDocker("/var/log/pyisolate-matrix-dockerd.log");
if (docker.reason) console.log(`container-matrix: skipped: ${docker.reason}`);
let tree;
if (!docker.reason)
  try {
    const key = imageKey(IMAGE_SCRIPT);
    const tag = `pyisolate-matrix:bookworm-${key}`;
    const image = ensureImage(
      IMAGE_SCRIPT,
      process.env.PYISOLATE_MATRIX_CACHE ?? "/var/cache/pyisolate-matrix",
      key,
      tag,
    );
    if (image.reason) throw new Skipped(image.reason);
    console.log(`container-matrix: image ${tag} ready in ${image.seconds} s; ${jobs} configuration(s) at a time`);
    const only = values.only?.split(",");
    const configs = CONFIGS.filter((c) => !only || only.includes(c.name));
    const engineReason = new Map();
    for (const engine of new Set(configs.map((c) => c.engine).filter((e) => e !== "docker")))
      engineReason.set(engine, preparePodman(engine, image.tarball, tag));
    tree = stageTree();
    const out = mkdtempSync("/var/tmp/pyisolate-matrix-out-");
    chmodSync(out, 0o755); // rootless podman's user mounts a folder below it
    const started = Date.now();
    const attempt = (config, n) => async () => {
      const skipped = engineReason.get(config.engine);
      if (skipped) return { name: config.name, command: commandLine(config), skipped, why: [] };
      console.log(`container-matrix: ${config.name}: ${commandLine(config)}${n > 1 ? " (second try)" : ""}`);
      const result = await runConfig(config, tree, out, tag, n);
      console.log(
        `  ${config.name}: ${result.why.length === 0 ? "pass" : `failed: ${result.why.join("; ")}`} (${result.seconds} s: ${JSON.stringify(result.phases)})`,
      );
      return result;
    };
    const results = await pool(
      configs.map((c) => attempt(c, 1)),
      jobs,
    );
    const retried = configs.map((c, i) => [c, i]).filter(([, i]) => results[i].why.length > 0);
    const second = await pool(
      retried.map(([c]) => attempt(c, 2)),
      jobs,
    );
    retried.forEach(([, i], k) => {
      results[i] = second[k].why.length === 0 ? { ...second[k], flaky: results[i].why } : second[k];
    });
    configs.forEach((c, i) => {
      if (values.record && !results[i].skipped) record(values.record, c, results[i]);
    });

    console.log(`\n${renderTable(results.map(matrixRow))}`);
    console.log(
      `\ncontainer-matrix: ${configs.length} configurations in ${Math.round((Date.now() - started) / 1000)} s, ${jobs} at a time; outputs in ${out}`,
    );
    if (values.markdown) writeFileSync(values.markdown, renderMarkdown(results));
    for (const r of results)
      if (r.skipped) console.log(`container-matrix: SKIPPED ${r.name} (${r.command}): ${r.skipped}`);
    for (const r of results)
      if (r.flaky)
        console.log(
          `container-matrix: FLAKY ${r.name} (${r.command}): failed once, then passed; first try: ${r.flaky.join("; ")}`,
        );
    for (const r of results)
      if (r.why.length > 0) console.log(`container-matrix: FAIL ${r.name} (${r.command}): ${r.why.join("; ")}`);
    process.exitCode = results.every((r) => r.why.length === 0) ? 0 : 1;
  } catch (e) {
    if (!(e instanceof Skipped)) throw e;
    console.log(`container-matrix: skipped: ${e.message}`);
  } finally {
    if (tree) rmSync(tree, { recursive: true, force: true });
    stopRootlessPause();
    docker.stop();
  }
