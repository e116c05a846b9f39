// The option names each options object accepts, the "did you mean" a misspelled one gets, and the word checks.

import { ConfigError } from "../errors.js";
import { isOneOf, quotedChoices } from "../vocabulary.js";
import type { ExtensionOptions, ManagerOptions, SandboxOptions, SharedRuntimeOptions } from "./options.js";

// Each list is the keys of a record typed `Record<keyof Options, true>`: a key added to an options interface and not
// here (or listed here and not there) fails the type check, so the lists cannot drift from the types.

const EXTENSION_FIELDS: Record<keyof ExtensionOptions, true> = {
  name: true,
  modulePath: true,
  dependencies: true,
  python: true,
  env: true,
  extensionClass: true,
  indexUrl: true,
  extraIndexUrls: true,
  findLinks: true,
  installer: true,
  backend: true,
  sandbox: true,
  callTimeoutMs: true,
  startTimeoutMs: true,
  onProgress: true,
  signal: true,
  tensorTransport: true,
  bytesMemfdThreshold: true,
  idlePollMicros: true,
  cudaIpc: true,
  sharedRuntime: true,
  systemSitePackages: true,
  services: true,
  fileEnv: true,
  protocolLimits: true,
  limits: true,
  restart: true,
  health: true,
  output: true,
  logger: true,
  inferenceMode: true,
  fileDependencyPaths: true,
  transport: true,
  placement: true,
};
const MANAGER_FIELDS: Record<keyof ManagerOptions, true> = {
  venvRoot: true,
  logger: true,
  forwardOutput: true,
  installer: true,
  backend: true,
  stopGraceMs: true,
  sharedRuntimes: true,
  cluster: true,
};
const SANDBOX_FIELDS: Record<keyof SandboxOptions, true> = {
  mode: true,
  backend: true,
  network: true,
  writablePaths: true,
  readonlyPaths: true,
  gpu: true,
  unixSockets: true,
};
const SHARED_RUNTIME_FIELDS: Record<keyof SharedRuntimeOptions, true> = {
  dependencies: true,
  python: true,
  indexUrl: true,
  extraIndexUrls: true,
  findLinks: true,
  installer: true,
  backend: true,
  systemSitePackages: true,
};

/** Every key of `manager.load({...})`. */
export const EXTENSION_OPTION_KEYS = Object.freeze(
  Object.keys(EXTENSION_FIELDS),
) as readonly (keyof ExtensionOptions)[];
/** Every key of `new ExtensionManager({...})`. */
export const MANAGER_OPTION_KEYS = Object.freeze(Object.keys(MANAGER_FIELDS)) as readonly (keyof ManagerOptions)[];
/** Every key of the `sandbox` option. */
export const SANDBOX_OPTION_KEYS = Object.freeze(Object.keys(SANDBOX_FIELDS)) as readonly (keyof SandboxOptions)[];
/** Every key of one `sharedRuntimes` entry. */
export const SHARED_RUNTIME_OPTION_KEYS = Object.freeze(
  Object.keys(SHARED_RUNTIME_FIELDS),
) as readonly (keyof SharedRuntimeOptions)[];

/** Edit distance (insert, delete, substitute, swap of neighbours), case-insensitive: "venvroot" is 0 from "venvRoot". */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  const rows: number[][] = Array.from({ length: s.length + 1 }, (_, i) => [i, ...new Array<number>(t.length).fill(0)]);
  for (let j = 1; j <= t.length; j++) rows[0]![j] = j;
  for (let i = 1; i <= s.length; i++) {
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      let best = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1])
        best = Math.min(best, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = best;
    }
  }
  return rows[s.length]![t.length]!;
}

/** The known name nearest to `word`, if it is near enough to be a slip (a third of its length, at least 2 edits). */
export function closestName(word: string, known: readonly string[]): string | undefined {
  // Bounded: a hostile or absurd key costs no quadratic time.
  if (word.length > 100) return undefined;
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const candidate of known) {
    const distance = editDistance(word, candidate);
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best;
}

/** Throws a ConfigError naming the first key of `value` not in `known`, with the closest known one. */
export function checkKnownKeys(value: object, known: readonly string[], prefix = ""): void {
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const guess = closestName(key, known);
    const shown = key.length > 60 ? `${key.slice(0, 57)}...` : key;
    throw new ConfigError(`unknown option "${prefix}${shown}"${guess ? `; did you mean "${prefix}${guess}"?` : ""}`, {
      key: `${prefix}${key}`,
    });
  }
}

/** `value` if it is absent or one of `allowed` (a vocabulary of ../vocabulary.ts), else a ConfigError naming `key`. */
export function checkOneOf<T extends string>(value: unknown, allowed: readonly T[], key: string): T | undefined {
  if (value === undefined || isOneOf(allowed, value)) return value;
  throw new ConfigError(`${key} must be ${quotedChoices(allowed)}`, { key });
}
