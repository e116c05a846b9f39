// Which index sources of an install the extension named (not the host's code), and the check that keeps its local ones in its folder.

import { realpath } from "node:fs/promises";
import path from "node:path";
import { ConfigError } from "../../errors.js";
import { guardConfigPaths } from "../../sandbox/path-guard.js";
import type { IndexOptions } from "../index-options.js";
import { localPathsIn } from "./config.js";

/** One index source the extension brought, with the key it came under. */
export interface ExtensionSource {
  key: "indexUrl" | "extraIndexUrls" | "findLinks";
  value: string;
}

/**
 * Pure: the sources in `index` that `trusted` (the host's code options) does not name: those came from the
 * extension's pyisolate.yaml. Without `trusted` every source is the host's (a direct ensureEnvironment call).
 */
export function extensionSources(index: IndexOptions, trusted: IndexOptions | undefined): ExtensionSource[] {
  if (!trusted) return [];
  const known = new Set([trusted.indexUrl ?? "", ...trusted.extraIndexUrls, ...trusted.findLinks].filter(Boolean));
  const all: ExtensionSource[] = [
    ...(index.indexUrl ? [{ key: "indexUrl" as const, value: index.indexUrl }] : []),
    ...index.extraIndexUrls.map((value) => ({ key: "extraIndexUrls" as const, value })),
    ...index.findLinks.map((value) => ({ key: "findLinks" as const, value })),
  ];
  return all.filter((s) => !known.has(s.value));
}

/** Pure: the local path a source names (a file:// URL, or a path: relative ones as the install resolves them), or undefined for a URL. */
export function localPathOf(source: string): string | undefined {
  if (/^[a-z][\w+.-]*:\/\//i.test(source)) return localPathsIn(source)[0];
  return path.resolve(source);
}

function isAtOrUnder(p: string, root: string): boolean {
  return p === root || p.startsWith(`${root}/`);
}

/**
 * Refuse any local source the extension named outside its own folder (symlinks resolved, so a link in the
 * folder that leads out is refused too), and any that the path guard refuses. Throws ConfigError naming the key.
 * URLs pass: the install proxy decides what they may reach (never the host's loopback or private network).
 */
export async function checkExtensionSources(
  sources: readonly ExtensionSource[],
  extensionDir: string | undefined,
): Promise<void> {
  if (sources.length === 0) return;
  const root = extensionDir ? await realpath(extensionDir).catch(() => path.resolve(extensionDir)) : undefined;
  for (const { key, value } of sources) {
    const local = localPathOf(value);
    if (local === undefined) {
      if (/^[a-z][\w+.-]*:\/\//i.test(value) && !/^https?:\/\//i.test(value) && !/^file:\/\//i.test(value))
        throw new ConfigError(`${key}: "${value}" is neither an http(s) URL nor a path in the extension's folder`, {
          key,
        });
      if (/^file:\/\//i.test(value))
        throw new ConfigError(`${key}: "${value}" is a file:// URL on another host`, { key });
      continue;
    }
    const [real] = await guardConfigPaths([local], key);
    if (!root || !isAtOrUnder(real!, root))
      throw new ConfigError(
        `${key}: "${value}" (${real}) is outside the extension's folder${root ? ` ${root}` : ""}; ` +
          `an extension's pyisolate.yaml may name package sources in its own folder or by URL, a host folder only the host's code options can`,
        { key },
      );
  }
}
