#!/usr/bin/env node
// The platform matrix, measured: builds a Debian image without a registry, then in each Docker configuration runs
// doctor, the attacks, a 1 GiB tensor round trip and the demo, and prints configuration | backend | attacks | ...
//
// Usage: node scripts/container-matrix.mjs [--only NAME,...] [--record DIR] [--markdown FILE]
//   --record DIR    write each configuration's detection evidence and outcome as DIR/<name>.json (test fixtures)
//   --markdown FILE write the matrix and each configuration's doctor output as markdown (docs/platforms.md's part)
// Exits 0 with "skipped: <reason>" when no Docker daemon can be started (CI runs it as an optional step).

import { spawnSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { CONFIGS, dockerArgs, matrixRow, renderMarkdown, renderTable } from "./container-matrix-configs.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const IMAGE = "pyisolate-matrix:bookworm";
/** What a container needs of the checkout: the built host, the guest runtime, the fixtures, the demo. */
const STAGED = ["package.json", "tsconfig.json", "src", "test", "python", "native", "node_modules", "dist", "examples", "scripts"];

const { values } = parseArgs({ options: { only: { type: "string" }, record: { type: "string" }, markdown: { type: "string" } } });

function sh(argv, options = {}) {
  return spawnSync(argv[0], argv.slice(1), { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, ...options });
}

function skip(reason) {
  console.log(`container-matrix: skipped: ${reason}`);
  process.exit(0);
}

/** A reachable daemon, starting dockerd (Debian's docker.io) when none runs. */
function ensureDocker() {
  if (sh(["docker", "version", "--format", "{{.Server.Version}}"]).status === 0) return;
  if (sh(["sh", "-c", "command -v dockerd"]).status !== 0) skip("no dockerd (apt-get install docker.io debootstrap)");
  if (process.getuid() !== 0) skip("starting dockerd needs root");
  const log = "/var/log/pyisolate-matrix-dockerd.log";
  sh(["sh", "-c", `setsid dockerd >${log} 2>&1 < /dev/null &`]);
  for (let i = 0; i < 60; i++) {
    if (sh(["docker", "version", "--format", "{{.Server.Version}}"]).status === 0) return;
    sh(["sleep", "1"]);
  }
  skip(`dockerd did not start: ${sh(["tail", "-n", "3", log]).stdout.trim()}`);
}

function stageTree() {
  const dir = mkdtempSync("/var/tmp/pyisolate-matrix-tree-");
  chmodSync(dir, 0o755);
  for (const entry of STAGED) {
    const from = path.join(ROOT, entry);
    if (existsSync(from)) cpSync(from, path.join(dir, entry), { recursive: true, verbatimSymlinks: true, filter: (s) => !s.includes("__pycache__") && !s.endsWith("/.venvs") });
  }
  sh(["chmod", "-R", "a+rX", dir]);
  return dir;
}

/** One configuration: a fresh container that copies the tree, then runs doctor, the probe and the demo. */
function runConfig(config, tree, out) {
  const dir = path.join(out, config.name);
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o777);
  const script = [
    "set +e",
    "cp -r /src /tmp/p && cd /tmp/p",
    "node dist/cli.js doctor > /out/doctor.txt 2>&1; echo $? > /out/doctor.rc",
    "timeout 900 node --import tsx scripts/container-matrix-probe.ts /tmp/venvs > /out/probe.txt 2>&1; echo $? > /out/probe.rc",
    "timeout 900 node examples/demo.mjs > /out/demo.txt 2>&1; echo $? > /out/demo.rc",
  ].join("\n");
  const started = Date.now();
  const r = sh(["docker", "run", "--rm", ...dockerArgs(config), "-v", `${tree}:/src:ro`, "-v", `${dir}:/out`, IMAGE, "sh", "-c", script]);
  const read = (f) => (existsSync(path.join(dir, f)) ? readFileSync(path.join(dir, f), "utf8") : "");
  const probeLines = read("probe.txt").trim().split("\n");
  let probe;
  try {
    probe = JSON.parse(probeLines.at(-1) ?? "");
  } catch {
    probe = { error: `the probe printed no result (rc ${read("probe.rc").trim()}): ${probeLines.slice(-3).join(" | ")}` };
  }
  return {
    name: config.name, options: config.options, seconds: Math.round((Date.now() - started) / 1000), dockerRc: r.status,
    dockerErr: r.stderr.trim().split("\n").slice(-3).join(" | "),
    doctor: read("doctor.txt"), probe, demo: { rc: Number(read("demo.rc").trim() || -1), tail: read("demo.txt").trim().split("\n").slice(-4) },
  };
}

ensureDocker();
const built = sh(["bash", path.join(ROOT, "scripts", "container-matrix-image.sh"), IMAGE], { stdio: "inherit" });
if (built.status !== 0) skip("the image could not be built (see above)");
const only = values.only?.split(",");
const configs = CONFIGS.filter((c) => !only || only.includes(c.name));
const tree = stageTree();
const out = mkdtempSync("/var/tmp/pyisolate-matrix-out-");
const results = [];
try {
  for (const config of configs) {
    console.log(`container-matrix: ${config.name}: docker run ${config.options.join(" ")}`);
    const result = runConfig(config, tree, out);
    results.push(result);
    console.log(`  ${renderTable([matrixRow(result)]).split("\n").at(-1)}   (${result.seconds} s)`);
    if (values.record && result.probe.evidence) {
      mkdirSync(values.record, { recursive: true });
      const { evidence, detected, attack, tensors } = result.probe;
      const fixture = { description: `docker run ${config.options.join(" ")}`.trim(), recorded: new Date().toISOString().slice(0, 10), evidence, detected, observed: { loadBackend: attack.backend ?? null, attack, tensors, demoRc: result.demo.rc } };
      writeFileSync(path.join(values.record, `${config.name}.json`), `${JSON.stringify(fixture, null, 2)}\n`);
    }
  }
} finally {
  rmSync(tree, { recursive: true, force: true });
}
console.log(`\n${renderTable(results.map(matrixRow))}`);
if (values.markdown) writeFileSync(values.markdown, renderMarkdown(results));
console.log(`\ncontainer-matrix: outputs in ${out}`);
process.exitCode = results.every((r) => matrixRow(r).ok) ? 0 : 1;
