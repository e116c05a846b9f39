#!/usr/bin/env node
// The `pyisolate` command line: run one method of an extension and print its result as JSON.

import { basename, resolve } from "node:path";
import { parseArgs } from "node:util";
import { ExtensionManager } from "./manager.js";
import { PyIsolateError, RemoteError } from "./errors.js";
import { RUNTIME_VERSION } from "./version.js";
import type { ProgressEvent } from "./env/builder.js";
import { formatDoctorJson, formatDoctorText, runDoctor } from "./sandbox/index.js";
import { PRUNE_USAGE, runPrune, type PruneFlags } from "./prune/command.js";

const USAGE = `usage: pyisolate run <modulePath> <method> [json-args] [options]
       pyisolate doctor [--json]
${PRUNE_USAGE}

Loads the extension in <modulePath> (a Python package folder) in its own venv and process, calls
<method> with the JSON array (or single JSON value) [json-args], and prints the result as JSON.

doctor prints this machine's compatibility matrix (sandbox, tensor IPC, Python, torch, CUDA,
container) and what to do about each gap; --json gives the same as data.

options:
  --json               doctor: print JSON
  --name NAME          extension name (default: the folder name)
  --dep REQUIREMENT    a pip requirement; repeat for more (pyisolate.yaml may also list them)
  --python VERSION     interpreter for the venv, e.g. 3.11 or a path
  --venv-root DIR      where venvs live (default: ./.venvs)
  --timeout MS         call timeout in milliseconds
  --quiet              do not print environment progress
  --version            print the version`;

function parseCallArgs(text: string | undefined): unknown[] {
  if (text === undefined) return [];
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`json-args is not valid JSON: ${(error as Error).message}`);
  }
  return Array.isArray(value) ? value : [value];
}

function printProgress(event: ProgressEvent): void {
  if (event.stage === "install" && event.line) process.stderr.write(`  | ${event.line}\n`);
  else process.stderr.write(`pyisolate: ${event.message}\n`);
}

function toJson(value: unknown): string {
  return JSON.stringify(value, (_, item) => {
    if (typeof item === "bigint") return item.toString();
    if (item instanceof Uint8Array) return { bytes: Buffer.from(item).toString("base64") };
    if (typeof item === "number" && !Number.isFinite(item)) return String(item);
    return item;
  }, 2);
}

async function run(positionals: string[], values: Record<string, unknown>): Promise<void> {
  const [modulePath, method, jsonArgs] = positionals;
  if (!modulePath || !method) throw new Error(USAGE);
  const manager = new ExtensionManager({ venvRoot: (values["venv-root"] as string) ?? ".venvs" });
  try {
    const extension = await manager.load({
      name: (values.name as string) ?? basename(resolve(modulePath)),
      modulePath,
      dependencies: values.dep as string[] | undefined,
      python: values.python as string | undefined,
      sandbox: { mode: "preferred" },
      onProgress: values.quiet ? undefined : printProgress,
    });
    const timeoutMs = values.timeout === undefined ? undefined : Number(values.timeout);
    const result = await extension.call(method, parseCallArgs(jsonArgs), { timeoutMs });
    process.stdout.write(`${toJson(result)}\n`);
  } finally {
    await manager.close();
  }
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
      timeout: { type: "string" },
      quiet: { type: "boolean" },
      json: { type: "boolean" },
      version: { type: "boolean" },
      help: { type: "boolean", short: "h" },
      keep: { type: "string", multiple: true },
      "keep-shared": { type: "string", multiple: true },
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
  if (command === "doctor") {
    const report = await runDoctor();
    process.stdout.write(`${values.json ? formatDoctorJson(report) : formatDoctorText(report)}\n`);
    return 0;
  }
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
    else if (error instanceof PyIsolateError) process.stderr.write(`pyisolate: ${error.message}\n`);
    else process.stderr.write(`pyisolate: ${(error as Error).message ?? String(error)}\n`);
    process.exit(1);
  },
);
