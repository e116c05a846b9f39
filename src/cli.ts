#!/usr/bin/env node
// The `pyisolate` command line: run one method of an extension and print its result as JSON.

import { writeFile } from "node:fs/promises";
import { basename, resolve } from "node:path";
import { parseArgs } from "node:util";
import { ExtensionManager } from "./manager.js";
import { EnvironmentBuildError, PyIsolateError, RemoteError } from "./errors.js";
import { createConsoleLogger } from "./logger.js";
import { RUNTIME_VERSION } from "./version.js";
import { toJsonDocument } from "./output/json-result.js";
import { createProgressView } from "./output/progress-view.js";
import { checkRayCluster, formatDoctorJson, formatDoctorText, formatRayReport, runDoctor } from "./doctor/index.js";
import { PRUNE_USAGE, runPrune, type PruneFlags } from "./prune/command.js";
import { generateTypes } from "./types/typegen.js";

const USAGE = `usage: pyisolate run <modulePath> <method> [json-args] [options]
       pyisolate doctor [--json]
       pyisolate doctor --ray ADDRESS [--json]
       pyisolate types <modulePath> [--class NAME] [--out FILE]
${PRUNE_USAGE}

Loads the extension in <modulePath> (a Python package folder) in its own venv and process, calls
<method> with the JSON array (or single JSON value) [json-args], and prints the result as JSON.
The sandbox mode is "preferred": the best this host offers, with a warning on stderr when that is
less than full bubblewrap (the library's default is "required").

doctor prints this machine's compatibility matrix (sandbox, tensor IPC, Python, torch, CUDA,
container) and what to do about each gap; --json gives the same as data. With --ray ADDRESS it checks
a Ray cluster instead (its Jobs API, e.g. http://127.0.0.1:8265): reachable, Ray version, nodes and
resources, and whether a guest on each node can confine itself (one tiny probe job per node).

types prints a .d.ts for the extension in <modulePath> from its Python type hints (parsed, never run):
the <Class>Api and <Class>Events interfaces for manager.load<Api, Events>(); --out writes it to FILE.

options:
  --json               doctor: print JSON
  --ray ADDRESS        doctor: check the Ray cluster whose Jobs API is at ADDRESS
  --name NAME          extension name (default: the folder name)
  --dep REQUIREMENT    a pip requirement; repeat for more (pyisolate.yaml may also list them)
  --python VERSION     interpreter for the venv, e.g. 3.11 or a path (types: the parser's, default python3)
  --class NAME         types: the extension class, where the folder holds more than one
  --out FILE           types: write the .d.ts to FILE instead of stdout
  --venv-root DIR      where venvs live (default: ./.venvs)
  --index-url URL      the package index to install from (default: uv's or pip's own)
  --timeout MS         call timeout in milliseconds
  --quiet              print nothing on stderr but errors (no progress, no extension output)
  --raw                tensors as descriptors (dtype, shape, strides) instead of nested arrays of values
  --version            print the version`;

function parseCallArgs(text: string | undefined): unknown[] {
  if (text === undefined) return [];
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`json-args is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  return Array.isArray(value) ? value : [value];
}

async function run(positionals: string[], values: Record<string, unknown>): Promise<void> {
  const [modulePath, method, jsonArgs] = positionals;
  if (!modulePath || !method) throw new Error(USAGE);
  const quiet = values.quiet === true;
  // Progress goes to stderr (a bar on a terminal, lines otherwise): stdout is the result's alone.
  const view = quiet ? undefined : createProgressView();
  const manager = new ExtensionManager({
    venvRoot: (values["venv-root"] as string) ?? ".venvs",
    ...(quiet ? { logger: createConsoleLogger("error"), forwardOutput: false } : {}),
  });
  try {
    const extension = await manager.load({
      name: (values.name as string) ?? basename(resolve(modulePath)),
      modulePath,
      dependencies: values.dep as string[] | undefined,
      python: values.python as string | undefined,
      indexUrl: values["index-url"] as string | undefined,
      sandbox: { mode: "preferred" },
      onProgress: view?.onProgress,
    });
    const timeoutMs = values.timeout === undefined ? undefined : Number(values.timeout);
    const result = await extension.call(method, parseCallArgs(jsonArgs), { timeoutMs });
    // The one thing on stdout: a JSON document that `jq` or JSON.parse reads whole.
    process.stdout.write(`${toJsonDocument(result, { raw: values.raw === true })}\n`);
  } finally {
    view?.stop();
    await manager.close();
  }
}

async function types(positionals: string[], values: Record<string, unknown>): Promise<number> {
  if (positionals.length !== 1) throw new Error(USAGE);
  const result = await generateTypes(positionals[0]!, {
    className: values.class as string | undefined,
    python: values.python as string | undefined,
  });
  for (const warning of result.warnings) process.stderr.write(`pyisolate types: ${warning}\n`);
  if (values.out) await writeFile(values.out as string, result.dts);
  else process.stdout.write(result.dts);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      name: { type: "string" },
      dep: { type: "string", multiple: true },
      python: { type: "string" },
      "venv-root": { type: "string" },
      "index-url": { type: "string" },
      timeout: { type: "string" },
      quiet: { type: "boolean" },
      raw: { type: "boolean" },
      json: { type: "boolean" },
      ray: { type: "string" },
      version: { type: "boolean" },
      class: { type: "string" },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
      keep: { type: "string", multiple: true },
      "keep-shared": { type: "string", multiple: true },
      "unused-for": { type: "string" },
      delete: { type: "boolean" },
      "dry-run": { type: "boolean" },
    },
  });
  if (values.version) {
    process.stdout.write(`${RUNTIME_VERSION}\n`);
    return 0;
  }
  const [command, ...rest] = positionals;
  if (values.help || command === undefined || command === "help") {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined && !values.help ? 2 : 0;
  }
  if (command === "doctor" && typeof values.ray === "string") {
    const cluster = await checkRayCluster(values.ray);
    process.stdout.write(`${values.json ? JSON.stringify(cluster, null, 2) : formatRayReport(cluster)}\n`);
    return cluster.reachable ? 0 : 1;
  }
  if (command === "doctor") {
    const report = await runDoctor();
    process.stdout.write(`${values.json ? formatDoctorJson(report) : formatDoctorText(report)}\n`);
    return 0;
  }
  if (command === "types") return types(rest, values);
  if (command === "prune") return runPrune(values as PruneFlags, (text) => process.stdout.write(text));
  if (command !== "run") {
    process.stderr.write(`pyisolate: unknown command "${command}"\n${USAGE}\n`);
    return 2;
  }
  await run(rest, values);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof RemoteError) process.stderr.write(`${error.message}\n${error.remoteTraceback}\n`);
    // The message is the installer's one-line reason; a person at a terminal wants its own last lines too.
    else if (error instanceof EnvironmentBuildError && error.output)
      process.stderr.write(`pyisolate: ${error.message}\n  | ${error.output.split("\n").join("\n  | ")}\n`);
    else if (error instanceof PyIsolateError) process.stderr.write(`pyisolate: ${error.message}\n`);
    else process.stderr.write(`pyisolate: ${(error as Error).message ?? String(error)}\n`);
    process.exit(1);
  },
);
