// The option names each options object accepts, and the "did you mean" that a misspelled one gets.

import { ConfigError } from "../errors.js";

/** Every key of `manager.load({...})`. */
export const EXTENSION_OPTION_KEYS = [
  "name", "modulePath", "dependencies", "python", "env", "extensionClass", "indexUrl", "extraIndexUrls",
  "findLinks", "backend", "sandbox", "callTimeoutMs", "startTimeoutMs", "onProgress", "signal",
  "tensorTransport", "sharedRuntime", "systemSitePackages", "services", "fileEnv", "protocolLimits", "limits",
  "restart", "health", "output", "logger", "inferenceMode", "fileDependencyPaths",
] as const;

/** Every key of `new ExtensionManager({...})`. */
export const MANAGER_OPTION_KEYS = ["venvRoot", "logger", "forwardOutput", "backend", "stopGraceMs", "sharedRuntimes"] as const;

/** Every key of the `sandbox` option. */
export const SANDBOX_OPTION_KEYS = ["mode", "backend", "network", "writablePaths", "readonlyPaths", "gpu", "unixSockets"] as const;

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
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1]) best = Math.min(best, rows[i - 2]![j - 2]! + 1);
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
    throw new ConfigError(`unknown option "${prefix}${shown}"${guess ? `; did you mean "${prefix}${guess}"?` : ""}`, { key: `${prefix}${key}` });
  }
}
