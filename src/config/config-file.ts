// Reads the optional pyisolate.yaml of an extension folder; config given in code wins over it.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { ConfigError } from "../errors.js";
import type { ExtensionOptions } from "./options.js";
import { checkFileOptions, FILE_KEYS, type FileAllowances, type FileOptions } from "./file-policy.js";
import { validateExtensionOptions } from "./validate.js";

export const CONFIG_FILE_NAME = "pyisolate.yaml";

/**
 * Returns the options a module folder's pyisolate.yaml sets, checked against the trust boundary (file-policy.ts), or
 * {} when there is no file. `modulePath` must be a real path; `allow` is what the host's code options let the file do.
 */
export function readConfigFile(modulePath: string, allow: FileAllowances = {}): FileOptions {
  const file = join(modulePath, CONFIG_FILE_NAME);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new ConfigError(`cannot read ${file}: ${(error as Error).message}`, { file, cause: error });
  }
  let data: unknown;
  try {
    data = parse(text);
  } catch (error) {
    throw new ConfigError(`${file} is not valid YAML: ${(error as Error).message}`, { file, cause: error });
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== "object" || Array.isArray(data)) {
    throw new ConfigError(`${file} must hold a mapping of options`, { file });
  }
  for (const key of Object.keys(data)) {
    if (!FILE_KEYS.includes(key)) {
      throw new ConfigError(`${file}: unknown key "${key}" (allowed: ${FILE_KEYS.join(", ")})`, { key, file });
    }
  }
  try {
    validateExtensionOptions({ name: "config-file", modulePath, ...(data as FileOptions) });
  } catch (error) {
    if (error instanceof ConfigError) {
      throw new ConfigError(`${file}: ${error.message}`, { key: error.key, file, cause: error });
    }
    throw error;
  }
  return checkFileOptions(data as FileOptions, modulePath, file, allow);
}

/** Merges file options under code options: a key given in code wins. */
export function mergeOptions(fromFile: FileOptions, fromCode: ExtensionOptions): ExtensionOptions {
  const merged: Record<string, unknown> = { ...fromFile };
  for (const [key, value] of Object.entries(fromCode)) {
    if (value !== undefined) merged[key] = value;
  }
  return merged as unknown as ExtensionOptions;
}
