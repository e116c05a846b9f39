// Reads the optional pyisolate.yaml of an extension folder; config given in code wins over it.

import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import { join } from "node:path";
import { parseDocument } from "yaml";
import { ConfigError } from "../errors.js";
import type { ExtensionOptions } from "./options.js";
import { checkFileOptions, FILE_KEYS, type FileAllowances, type FileOptions } from "./file-policy.js";
import { validateExtensionOptions } from "./validate.js";
import { translateUpstream, UPSTREAM_KEYS, UpstreamValueError } from "./upstream-keys.js";
import { yamlNestingDepth } from "./yaml-depth.js";

export const CONFIG_FILE_NAME = "pyisolate.yaml";
/** A config file is a few lines; anything larger is not one (and /dev/zero behind a link would never end). */
export const CONFIG_FILE_MAX_BYTES = 64 * 1024;
/** Deepest nesting of mappings and lists the file may have (real ones nest 3 or 4 levels). */
export const CONFIG_FILE_MAX_DEPTH = 64;

/**
 * The file's text, or undefined when there is none. The folder is the extension's: the file is opened without
 * following a symlink (a link to a host file is refused, never read) and without blocking (a FIFO would stall the
 * host), must be a regular file and is read up to the limit.
 */
function readOwnFile(file: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return undefined;
    const why =
      code === "ELOOP"
        ? "it is a symbolic link; the config file must be a regular file in the folder"
        : (error as Error).message;
    throw new ConfigError(`cannot read ${file}: ${why}`, { file, cause: error });
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new ConfigError(`${file} is not a regular file`, { file });
    if (stat.size > CONFIG_FILE_MAX_BYTES)
      throw new ConfigError(`${file} is larger than ${CONFIG_FILE_MAX_BYTES} bytes`, { file });
    const buffer = Buffer.alloc(CONFIG_FILE_MAX_BYTES + 1);
    let length = 0;
    // Read to the end, or one byte past the limit: the size stat gave may have grown since.
    while (length < buffer.length) {
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
    }
    if (length > CONFIG_FILE_MAX_BYTES)
      throw new ConfigError(`${file} is larger than ${CONFIG_FILE_MAX_BYTES} bytes`, { file });
    return buffer.subarray(0, length).toString("utf8");
  } finally {
    closeSync(fd);
  }
}

/**
 * Returns the options a module folder's pyisolate.yaml sets, checked against the trust boundary (file-policy.ts), or
 * {} when there is no file. `modulePath` must be a real path; `allow` is what the host's code options let the file do.
 */
export function readConfigFile(modulePath: string, allow: FileAllowances = {}): FileOptions {
  const file = join(modulePath, CONFIG_FILE_NAME);
  const text = readOwnFile(file);
  if (text === undefined) return {};
  let data: unknown;
  try {
    if (yamlNestingDepth(text, CONFIG_FILE_MAX_DEPTH) > CONFIG_FILE_MAX_DEPTH) {
      throw new ConfigError(`${file} nests deeper than ${CONFIG_FILE_MAX_DEPTH} levels`, { file });
    }
    const doc = parseDocument(text);
    // A warning (an unresolved tag such as !!python/object) refuses the file: the yaml package would otherwise print
    // the extension's text on the host's stderr and go on with a guess of what the file meant.
    const fault = doc.errors[0] ?? doc.warnings[0];
    if (fault !== undefined) throw fault;
    data = doc.toJS();
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(`${file} is not valid YAML: ${(error as Error).message}`, { file, cause: error });
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== "object" || Array.isArray(data)) {
    throw new ConfigError(`${file} must hold a mapping of options`, { file });
  }
  for (const key of Object.keys(data)) {
    if (!FILE_KEYS.includes(key) && !Object.hasOwn(UPSTREAM_KEYS, key)) {
      throw new ConfigError(
        `${file}: unknown key "${key}" (allowed: ${FILE_KEYS.join(", ")}, and pyisolate 0.10's keys: ${Object.keys(UPSTREAM_KEYS).join(", ")})`,
        { key, file },
      );
    }
  }
  // pyisolate 0.10's spelling (share_torch, isolated, ...) becomes ours here; the rules below then judge ours alone.
  let translated: ReturnType<typeof translateUpstream>;
  try {
    const context = { sharedRuntimes: allow.sharedRuntimes ?? [], gpu: allow.gpu ?? false, name: allow.name ?? "" };
    translated = translateUpstream(data as Record<string, unknown>, context, (key) => FILE_KEYS.includes(key));
  } catch (error) {
    if (!(error instanceof UpstreamValueError)) throw error;
    throw new ConfigError(`${file}: ${error.message}`, { key: error.key, file, cause: error });
  }
  try {
    validateExtensionOptions({ name: "config-file", modulePath, ...(translated.options as FileOptions) });
  } catch (error) {
    if (error instanceof ConfigError) {
      throw new ConfigError(`${file}: ${error.message}`, { key: error.key, file, cause: error });
    }
    throw error;
  }
  const options = checkFileOptions(translated.options as FileOptions, modulePath, file, allow);
  // Set by the host for a key it understood (CUDA IPC), never a value the file wrote: the env rules are not for it.
  if (Object.keys(translated.hostEnv).length > 0) options.env = { ...options.env, ...translated.hostEnv };
  for (const warning of translated.warnings) allow.onWarning?.(`${file}: ${warning}`);
  return options;
}

/** Merges file options under code options: a key given in code wins. */
export function mergeOptions(fromFile: FileOptions, fromCode: ExtensionOptions): ExtensionOptions {
  const merged: Record<string, unknown> = { ...fromFile };
  for (const [key, value] of Object.entries(fromCode)) {
    if (value !== undefined) merged[key] = value;
  }
  return merged as unknown as ExtensionOptions;
}
