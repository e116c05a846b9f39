// Validates options once, at the boundary, with errors that name the offending key.

import { statSync } from "node:fs";
import { isAbsolute, join, normalize, resolve } from "node:path";
import { ConfigError } from "../errors.js";
import { isPreConfinementVariable } from "./env-policy.js";
import { resolveLimits, type ProtocolLimits } from "../rpc/limits.js";
import { validateResourceLimits } from "../limits/types.js";
import { resolveHealthPolicy, type HealthPolicy } from "../lifecycle/health.js";
import { MAX_IDLE_POLL_MICROS } from "../lifecycle/init-message.js";
import { resolveRestartPolicy, type RestartPolicy } from "../lifecycle/restart-policy.js";
import { resolveOutputLimits, type OutputLimits } from "../output/output-limits.js";
import type { ExtensionOptions, ManagerOptions, SharedRuntimeOptions } from "./options.js";
import {
  checkKnownKeys,
  checkOneOf,
  EXTENSION_OPTION_KEYS,
  MANAGER_OPTION_KEYS,
  SANDBOX_OPTION_KEYS,
  SHARED_RUNTIME_OPTION_KEYS,
} from "./known-keys.js";
import { renameInstaller } from "./renamed.js";
import {
  INSTALLERS,
  SANDBOX_BACKEND_CHOICES,
  SANDBOX_MODES,
  TENSOR_TRANSPORT_OPTIONS,
  TRANSPORTS,
} from "../vocabulary.js";
import { validateCluster } from "../remote/listen-check.js";
import { validatePlacement } from "../ray/options-check.js";
import { isLogger } from "../logger.js";

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const ENV_KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
/** Node's timers fire at once (with a warning) past this many milliseconds, so no timeout may be longer. */
const MAX_TIMER_MS = 2_147_483_647;
const SERVICE_NAME = /^[A-Za-z_][\w.]*$/;

/** Checks an extension name: it becomes a folder name, so only a plain file name is accepted. */
export function validateName(name: unknown): string {
  if (typeof name !== "string" || name.length === 0) {
    throw new ConfigError("name must be a non-empty string", { key: "name" });
  }
  if (!NAME_PATTERN.test(name) || name.includes("..")) {
    throw new ConfigError(
      `name ${JSON.stringify(name)} is not allowed: use letters, digits, ".", "_" and "-" ` +
        `(no path separators, "..", spaces or shell characters; at most 100 characters)`,
      { key: "name" },
    );
  }
  return name;
}

/** Checks one pip requirement string; index and other options have their own keys. */
export function validateRequirement(requirement: unknown, key = "dependencies"): string {
  if (typeof requirement !== "string" || requirement.trim() === "") {
    throw new ConfigError(`${key}: each entry must be a non-empty requirement string`, { key });
  }
  if (CONTROL_CHARS.test(requirement)) {
    throw new ConfigError(`${key}: ${JSON.stringify(requirement)} contains control characters`, { key });
  }
  if (requirement.split(/\s+/).some((token) => token.startsWith("-"))) {
    throw new ConfigError(
      `${key}: ${JSON.stringify(requirement)} holds an installer option; only requirement strings are ` +
        `allowed (use the indexUrl, extraIndexUrls and findLinks options instead)`,
      { key },
    );
  }
  return requirement.trim();
}

function stringList(value: unknown, key: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((item) => typeof item !== "string")) {
    throw new ConfigError(`${key} must be an array of strings`, { key });
  }
  for (const item of value as string[]) {
    if (CONTROL_CHARS.test(item) || item.startsWith("-")) {
      throw new ConfigError(`${key}: ${JSON.stringify(item)} is not a URL or path`, { key });
    }
  }
  return value as string[];
}

function optionalString(value: unknown, key: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value === "" || CONTROL_CHARS.test(value) || value.startsWith("-")) {
    throw new ConfigError(`${key} must be a non-empty string`, { key });
  }
  return value;
}

function optionalPositive(value: unknown, key: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0 || value > MAX_TIMER_MS) {
    throw new ConfigError(`${key} must be a positive number of milliseconds, at most ${MAX_TIMER_MS}`, { key });
  }
  return value;
}

function optionalBoolean(value: unknown, key: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "boolean") throw new ConfigError(`${key} must be true or false`, { key });
  return value;
}

function validateEnv(env: unknown): Record<string, string> | undefined {
  if (env === undefined) return undefined;
  if (typeof env !== "object" || env === null || Array.isArray(env)) {
    throw new ConfigError("env must be an object of string values", { key: "env" });
  }
  for (const [name, value] of Object.entries(env)) {
    if (!ENV_KEY_PATTERN.test(name))
      throw new ConfigError(`env: ${JSON.stringify(name)} is not a variable name`, { key: "env" });
    if (typeof value !== "string" || value.includes("\0")) {
      throw new ConfigError(`env.${name} must be a string without NUL characters`, { key: `env.${name}` });
    }
  }
  return env as Record<string, string>;
}

/** `services`: the host service names one extension may call (an identifier each, as `provide()` takes). */
function validateServices(value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((name) => typeof name !== "string" || !SERVICE_NAME.test(name))) {
    throw new ConfigError("services must be an array of service names (identifiers, as given to provide())", {
      key: "services",
    });
  }
  return value as string[];
}

/** `fileEnv`: extra variable names the extension's pyisolate.yaml may set; never one that acts before the sandbox. */
function validateFileEnv(value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((name) => typeof name !== "string" || !ENV_KEY_PATTERN.test(name))) {
    throw new ConfigError("fileEnv must be an array of environment variable names", { key: "fileEnv" });
  }
  const early = (value as string[]).find(isPreConfinementVariable);
  if (early !== undefined) {
    throw new ConfigError(
      `fileEnv: ${early} acts before the sandbox (a loader, interpreter or host variable): the config file may never set it; set it with env in load() instead`,
      { key: "fileEnv" },
    );
  }
  return value as string[];
}

/** A list of absolute host paths (made normal), for options that let the file name them. */
function validateAbsolutePaths(value: unknown, key: string): string[] | undefined {
  const list = stringList(value, key);
  const relative = list?.find((p) => !isAbsolute(p));
  if (relative !== undefined)
    throw new ConfigError(`${key}: ${JSON.stringify(relative)} is not an absolute path`, { key });
  return list?.map((p) => normalize(p));
}

function validateModulePath(modulePath: unknown): string {
  if (typeof modulePath !== "string" || modulePath === "") {
    throw new ConfigError("modulePath must be the path of a Python package folder", { key: "modulePath" });
  }
  const absolute = resolve(modulePath);
  if (!statSync(absolute, { throwIfNoEntry: false })?.isDirectory()) {
    throw new ConfigError(`modulePath ${absolute} is not a folder`, { key: "modulePath" });
  }
  if (!statSync(join(absolute, "__init__.py"), { throwIfNoEntry: false })?.isFile()) {
    throw new ConfigError(`modulePath ${absolute} has no __init__.py: it must be a Python package`, {
      key: "modulePath",
    });
  }
  return absolute;
}

/**
 * Returns a checked copy of the load options with defaults filled and paths made absolute; the deprecated `backend`
 * comes back as `installer`, and `onDeprecated` hears of it.
 */
export function validateExtensionOptions(
  options: ExtensionOptions,
  onDeprecated?: (message: string) => void,
): ExtensionOptions & {
  dependencies: string[];
  protocolLimits: ProtocolLimits;
  restartPolicy: RestartPolicy | undefined;
  healthPolicy: HealthPolicy | undefined;
  output: OutputLimits;
} {
  if (typeof options !== "object" || options === null) throw new ConfigError("load() needs an options object");
  checkKnownKeys(options, EXTENSION_OPTION_KEYS);
  checkLogger(options.logger);
  const dependencies = options.dependencies ?? [];
  if (!Array.isArray(dependencies))
    throw new ConfigError("dependencies must be an array of strings", { key: "dependencies" });
  validateSandbox(options.sandbox);
  checkCudaIpc(options);
  checkOneOf(options.tensorTransport, TENSOR_TRANSPORT_OPTIONS, "tensorTransport");
  checkBytesThreshold(options.bytesMemfdThreshold);
  checkIdlePoll(options.idlePollMicros);
  checkTransport(options);
  validatePlacement(options.placement);
  const installer = checkOneOf(
    renameInstaller(options, "", onDeprecated),
    INSTALLERS,
    options.installer === undefined && options.backend !== undefined ? "backend" : "installer",
  );
  if (options.extensionClass !== undefined && !/^[A-Za-z_][\w.]*:[A-Za-z_]\w*$/.test(options.extensionClass)) {
    throw new ConfigError(`extensionClass must look like "package.module:ClassName"`, { key: "extensionClass" });
  }
  for (const key of ["onProgress"] as const) {
    if (options[key] !== undefined && typeof options[key] !== "function")
      throw new ConfigError(`${key} must be a function`, { key });
  }
  const { backend: _deprecated, ...rest } = options;
  return {
    ...rest,
    ...(installer === undefined ? {} : { installer }),
    cudaIpc: optionalBoolean(options.cudaIpc, "cudaIpc"),
    name: validateName(options.name),
    modulePath: validateModulePath(options.modulePath),
    dependencies: dependencies.map((dep) => validateRequirement(dep)),
    python: optionalString(options.python, "python"),
    env: validateEnv(options.env),
    indexUrl: optionalString(options.indexUrl, "indexUrl"),
    extraIndexUrls: stringList(options.extraIndexUrls, "extraIndexUrls"),
    findLinks: stringList(options.findLinks, "findLinks"),
    sharedRuntime: options.sharedRuntime === null ? null : optionalString(options.sharedRuntime, "sharedRuntime"),
    systemSitePackages: optionalBoolean(options.systemSitePackages, "systemSitePackages"),
    inferenceMode: optionalBoolean(options.inferenceMode, "inferenceMode"),
    services: validateServices(options.services),
    fileEnv: validateFileEnv(options.fileEnv),
    fileDependencyPaths: validateAbsolutePaths(options.fileDependencyPaths, "fileDependencyPaths"),
    callTimeoutMs: optionalPositive(options.callTimeoutMs, "callTimeoutMs"),
    startTimeoutMs: optionalPositive(options.startTimeoutMs, "startTimeoutMs"),
    protocolLimits: validateLimits(options.protocolLimits),
    limits: validateResourceLimits(options.limits),
    restartPolicy: validateRestart(options.restart),
    healthPolicy: validateHealth(options.health),
    output: resolveOutputLimits(options.output),
  };
}

/** Checks an object of numbers against `keys` (each `[name, min]`), naming `option.key` in the error. */
function checkNumbers(
  option: string,
  value: object,
  keys: Record<string, number>,
  flags: readonly string[] = [],
): void {
  for (const [key, v] of Object.entries(value)) {
    const name = `${option}.${key}`;
    if (flags.includes(key)) {
      if (v !== undefined && typeof v !== "boolean")
        throw new ConfigError(`${name} must be true or false`, { key: name });
      continue;
    }
    const min = keys[key];
    if (min === undefined) throw new ConfigError(`unknown option "${name}"`, { key: name });
    if (v === undefined) continue;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > MAX_TIMER_MS) {
      throw new ConfigError(`${name} must be a whole number from ${min} to ${MAX_TIMER_MS}`, { key: name });
    }
  }
}

/** `restart`: off when absent; maxRestarts counts restarts within windowMs, backoffMs waits before each. */
function validateRestart(restart: unknown): RestartPolicy | undefined {
  if (restart === undefined) return undefined;
  if (typeof restart !== "object" || restart === null || Array.isArray(restart)) {
    throw new ConfigError("restart must be an object such as { maxRestarts: 3, windowMs: 60000, backoffMs: 1000 }", {
      key: "restart",
    });
  }
  checkNumbers("restart", restart, { maxRestarts: 0, windowMs: 1, backoffMs: 0, queueTimeoutMs: 1 }, ["queueCalls"]);
  return resolveRestartPolicy(restart);
}

/** `transport`: a word of TRANSPORTS; over TCP there is no fd channel (shm). */
function checkTransport(options: ExtensionOptions): void {
  if (checkOneOf(options.transport, TRANSPORTS, "transport") !== "tcp") return;
  if (options.tensorTransport === "shm") {
    throw new ConfigError('tensorTransport "shm" needs the Unix transport: over TCP tensors travel by value ("copy")', {
      key: "tensorTransport",
    });
  }
}

/** `health`: off by default, `true` the defaults; the timeout must leave room for at least one ping. */
function validateHealth(health: unknown): HealthPolicy | undefined {
  if (health === false || health === undefined) return undefined;
  if (health !== true && (typeof health !== "object" || health === null || Array.isArray(health))) {
    throw new ConfigError("health must be true, false or an object such as { intervalMs: 1000, timeoutMs: 30000 }", {
      key: "health",
    });
  }
  const options = health === true ? {} : (health as object);
  checkNumbers("health", options, { intervalMs: 10, timeoutMs: 10 });
  const policy = resolveHealthPolicy(options)!;
  if (policy.timeoutMs < policy.intervalMs) {
    throw new ConfigError(
      `health.timeoutMs (${policy.timeoutMs}) must be at least health.intervalMs (${policy.intervalMs})`,
      { key: "health.timeoutMs" },
    );
  }
  return policy;
}

/** The `limits` option over the defaults; a ConfigError names the limit that is unknown or out of range. */
function validateLimits(limits: unknown): ProtocolLimits {
  if (limits === undefined) return resolveLimits();
  if (typeof limits !== "object" || limits === null || Array.isArray(limits)) {
    throw new ConfigError("protocolLimits must be an object such as { maxFrameBytes: 1073741824 }", {
      key: "protocolLimits",
    });
  }
  try {
    return resolveLimits(limits as Partial<ProtocolLimits>);
  } catch (error) {
    const key =
      /^(\w+) must/.exec((error as Error).message)?.[1] ?? /limit "(\w+)"/.exec((error as Error).message)?.[1];
    throw new ConfigError(`protocolLimits: ${(error as Error).message}`, {
      key: key === undefined ? "protocolLimits" : `protocolLimits.${key}`,
    });
  }
}

/** Checks the shape of the `sandbox` option; its paths are checked against the host later, at load. */
function validateSandbox(sandbox: unknown): void {
  if (sandbox === undefined) return;
  if (typeof sandbox !== "object" || sandbox === null || Array.isArray(sandbox)) {
    throw new ConfigError('sandbox must be an object such as { mode: "required" }', { key: "sandbox" });
  }
  const s = sandbox as Record<string, unknown>;
  checkKnownKeys(s, SANDBOX_OPTION_KEYS, "sandbox.");
  checkOneOf(s.mode, SANDBOX_MODES, "sandbox.mode");
  checkOneOf(s.backend, SANDBOX_BACKEND_CHOICES, "sandbox.backend");
  for (const key of ["network", "gpu", "unixSockets"]) {
    if (s[key] !== undefined && typeof s[key] !== "boolean")
      throw new ConfigError(`sandbox.${key} must be true or false`, { key: `sandbox.${key}` });
  }
  for (const key of ["writablePaths", "readonlyPaths"]) {
    const list = s[key];
    if (
      list !== undefined &&
      (!Array.isArray(list) || list.some((p) => typeof p !== "string" || p === "" || CONTROL_CHARS.test(p)))
    ) {
      throw new ConfigError(`sandbox.${key} must be an array of paths`, { key: `sandbox.${key}` });
    }
  }
}

/** `cudaIpc`: a boolean; under a sandbox CUDA needs the GPU's device nodes, so `true` asks for `sandbox.gpu` too. */
/** A positive integer number of bytes, or Infinity (bytes never leave the frame). */
function checkBytesThreshold(value: unknown): void {
  if (value === undefined || value === Infinity) return;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    throw new ConfigError(`bytesMemfdThreshold must be a positive integer (bytes) or Infinity, got ${String(value)}`, {
      key: "bytesMemfdThreshold",
    });
  }
}

/** A whole number of microseconds from 0 to MAX_IDLE_POLL_MICROS. */
function checkIdlePoll(value: unknown): void {
  if (value === undefined) return;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > MAX_IDLE_POLL_MICROS) {
    throw new ConfigError(
      `idlePollMicros must be a whole number of microseconds from 0 to ${MAX_IDLE_POLL_MICROS}, got ${String(value)}`,
      { key: "idlePollMicros" },
    );
  }
}

function checkCudaIpc(options: ExtensionOptions): void {
  if (optionalBoolean(options.cudaIpc, "cudaIpc") !== true) return;
  if (options.sandbox?.mode !== "disabled" && options.sandbox?.gpu !== true) {
    throw new ConfigError(
      "cudaIpc: true needs sandbox.gpu: true (the sandbox hides the GPU otherwise), or the sandbox disabled",
      { key: "cudaIpc" },
    );
  }
}

/** `logger`: an object with debug, info, warn and error methods (console and pino both are). */
function checkLogger(logger: unknown): void {
  if (logger !== undefined && !isLogger(logger)) {
    throw new ConfigError("logger must be an object with debug, info, warn and error methods (e.g. console)", {
      key: "logger",
    });
  }
}

/** The checked manager options; the deprecated `backend` (here or in a layer) comes back as `installer`. */
export function validateManagerOptions(
  options: ManagerOptions,
  onDeprecated?: (message: string) => void,
): ManagerOptions {
  if (typeof options !== "object" || options === null)
    throw new ConfigError("ExtensionManager needs { venvRoot: string }", { key: "venvRoot" });
  // First: a misspelled venvRoot is better told as a slip than as a missing option.
  checkKnownKeys(options, MANAGER_OPTION_KEYS);
  if (typeof options.venvRoot !== "string" || options.venvRoot === "") {
    throw new ConfigError("ExtensionManager needs { venvRoot: string }", { key: "venvRoot" });
  }
  checkLogger(options.logger);
  optionalBoolean(options.forwardOutput, "forwardOutput");
  optionalPositive(options.stopGraceMs, "stopGraceMs");
  const installer = checkOneOf(
    renameInstaller(options, "", onDeprecated),
    INSTALLERS,
    options.installer === undefined && options.backend !== undefined ? "backend" : "installer",
  );
  const { backend: _deprecated, ...rest } = options;
  return {
    ...rest,
    ...(installer === undefined ? {} : { installer }),
    venvRoot: resolve(options.venvRoot),
    sharedRuntimes: validateSharedRuntimes(options.sharedRuntimes, onDeprecated),
    cluster: validateCluster(options.cluster),
  };
}

/** Checks `sharedRuntimes`: each key becomes a folder name, each value a venv spec with at least one dependency. */
function validateSharedRuntimes(
  runtimes: unknown,
  onDeprecated?: (message: string) => void,
): Record<string, SharedRuntimeOptions> | undefined {
  if (runtimes === undefined) return undefined;
  if (typeof runtimes !== "object" || runtimes === null || Array.isArray(runtimes)) {
    throw new ConfigError('sharedRuntimes must be an object such as { torch: { dependencies: ["torch==2.13.0"] } }', {
      key: "sharedRuntimes",
    });
  }
  const checked: Record<string, SharedRuntimeOptions> = {};
  for (const [name, spec] of Object.entries(runtimes)) {
    const key = `sharedRuntimes.${name}`;
    try {
      validateName(name);
    } catch {
      throw new ConfigError(`${key}: the name must be a plain folder name (letters, digits, ".", "_", "-")`, { key });
    }
    if (typeof spec !== "object" || spec === null || Array.isArray(spec))
      throw new ConfigError(`${key} must be an object`, { key });
    const s = spec as Record<string, unknown>;
    checkKnownKeys(s, SHARED_RUNTIME_OPTION_KEYS, `${key}.`);
    if (!Array.isArray(s.dependencies) || s.dependencies.length === 0) {
      throw new ConfigError(`${key}.dependencies must be a non-empty array of requirement strings`, {
        key: `${key}.dependencies`,
      });
    }
    const installer = checkOneOf(
      renameInstaller(s, `${key}.`, onDeprecated),
      INSTALLERS,
      `${key}.${s.installer === undefined && s.backend !== undefined ? "backend" : "installer"}`,
    );
    checked[name] = {
      dependencies: s.dependencies.map((dep) => validateRequirement(dep, `${key}.dependencies`)),
      python: optionalString(s.python, `${key}.python`),
      indexUrl: optionalString(s.indexUrl, `${key}.indexUrl`),
      extraIndexUrls: stringList(s.extraIndexUrls, `${key}.extraIndexUrls`),
      findLinks: stringList(s.findLinks, `${key}.findLinks`),
      ...(installer === undefined ? {} : { installer }),
      systemSitePackages: optionalBoolean(s.systemSitePackages, `${key}.systemSitePackages`),
    };
  }
  return checked;
}
