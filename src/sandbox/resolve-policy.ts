// Turns the `sandbox` option (from code and from the extension's pyisolate.yaml) into one checked policy.

import path from "node:path";
import { ConfigError } from "../errors.js";
import type { SandboxOptions } from "../config/options.js";
import { guardConfigPaths } from "./path-guard.js";
import type { PathPins } from "./pin-set.js";
import { DEFAULT_SANDBOX_POLICY, type SandboxPolicy } from "./types.js";

/** What an extension's own pyisolate.yaml may ask of the sandbox: the extension is untrusted, so it cannot loosen it. */
const FILE_MAY_SET = new Set(["writablePaths", "readonlyPaths", "mode"]);

function isAtOrUnder(p: string, root: string): boolean {
  return p === root || p.startsWith(`${root}/`);
}

/**
 * The config file's sandbox section, checked: it may name paths inside the extension's own folder and may ask
 * for `mode: "required"`; anything that would widen what the extension gets is the host application's call.
 */
function checkFileSandbox(file: SandboxOptions, configFile: string): void {
  for (const [key, value] of Object.entries(file)) {
    if (value === undefined) continue;
    if (!FILE_MAY_SET.has(key) || (key === "mode" && value !== "required")) {
      throw new ConfigError(
        `${configFile}: sandbox.${key} cannot be set by the extension's own config file; the host application sets it in load()`,
        { key: `sandbox.${key}`, file: configFile },
      );
    }
  }
}

async function guardFromFile(
  paths: readonly string[],
  key: string,
  modulePath: string,
  configFile: string,
  pins?: PathPins,
): Promise<string[]> {
  const real = await guardConfigPaths(paths, key, { base: modulePath, pins });
  for (const [i, p] of real.entries()) {
    if (!isAtOrUnder(p, modulePath)) {
      throw new ConfigError(
        `${configFile}: ${key}: "${paths[i]}" is outside the extension folder; only load() can grant it`,
        { key, file: configFile },
      );
    }
  }
  return real;
}

export interface ResolvePolicyInput {
  fromCode: SandboxOptions | undefined;
  fromFile: SandboxOptions | undefined;
  /** The extension folder, real path: relative paths are relative to it. */
  modulePath: string;
  configFile: string;
  /** Holds every checked path open for the sandbox (see `guardConfigPaths`). */
  pins?: PathPins;
}

/** The checked policy: defaults filled, the file's paths limited to the extension folder, every path guarded and resolved. */
export async function resolveSandboxPolicy(input: ResolvePolicyInput): Promise<SandboxPolicy> {
  const file = input.fromFile ?? {};
  checkFileSandbox(file, input.configFile);
  const code = input.fromCode ?? {};
  const base = { base: input.modulePath, pins: input.pins };
  const writable = [
    ...(await guardConfigPaths(code.writablePaths ?? [], "sandbox.writablePaths", base)),
    ...(await guardFromFile(
      file.writablePaths ?? [],
      "sandbox.writablePaths",
      input.modulePath,
      input.configFile,
      input.pins,
    )),
  ];
  const readonly = [
    ...(await guardConfigPaths(code.readonlyPaths ?? [], "sandbox.readonlyPaths", base)),
    ...(await guardFromFile(
      file.readonlyPaths ?? [],
      "sandbox.readonlyPaths",
      input.modulePath,
      input.configFile,
      input.pins,
    )),
  ];
  return {
    mode: code.mode ?? file.mode ?? DEFAULT_SANDBOX_POLICY.mode,
    backend: code.backend ?? DEFAULT_SANDBOX_POLICY.backend,
    network: code.network ?? DEFAULT_SANDBOX_POLICY.network,
    gpu: code.gpu ?? DEFAULT_SANDBOX_POLICY.gpu,
    unixSockets: code.unixSockets ?? DEFAULT_SANDBOX_POLICY.unixSockets,
    writablePaths: [...new Set(writable)],
    readonlyPaths: [...new Set(readonly)].map((p) => path.normalize(p)),
  };
}
