// Requirements that name a local folder or archive (`name @ file:///abs`, `./vendor/pkg`, `/abs/x.whl`), parsed and rewritten.

import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** One local requirement: the project name and extras when given, where it points as written, and its markers. */
export interface LocalRequirement {
  /** `pkg` or `pkg[extra]`, or undefined for a bare path. */
  name?: string;
  /** A `file:` URL or a path, as written. */
  target: string;
  /** `; markers` (with what separated it), or "". */
  markers: string;
}

const NAMED = /^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?\s*(?:\[[^\]]*\])?)\s*@\s*([^\s;]+)(\s*;.*)?$/s;
const BARE = /^([^\s;]+)(\s*;.*)?$/s;
/** Names pip and uv take as a local archive rather than a project on an index. */
const ARCHIVE = /\.(whl|zip|egg|tar|tgz|tbz2?|txz|tlz|tar\.(gz|bz2|xz|lz|lzma))$/i;

function looksLocal(target: string): boolean {
  if (/^file:/i.test(target)) return true;
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(target)) return false; // another scheme: a URL, not a path
  return /^[./~]/.test(target) || /[/\\]/.test(target) || ARCHIVE.test(target);
}

/** Pure: the requirement as a local one, or undefined when it names a project on an index or a remote URL. */
export function parseLocalRequirement(requirement: string): LocalRequirement | undefined {
  const text = requirement.trim();
  const named = NAMED.exec(text);
  if (named)
    return looksLocal(named[2]!)
      ? { name: named[1]!.replace(/\s+/g, ""), target: named[2]!, markers: named[3] ?? "" }
      : undefined;
  const bare = BARE.exec(text);
  if (bare && looksLocal(bare[1]!)) return { target: bare[1]!, markers: bare[2] ?? "" };
  return undefined;
}

/**
 * Pure: the absolute path a local requirement points at, relative ones taken from `base`; undefined for what no
 * path can say here (`~`, a `file:` URL naming another host).
 */
export function localTargetPath(local: LocalRequirement, base: string): string | undefined {
  if (/^file:/i.test(local.target)) {
    try {
      return path.normalize(fileURLToPath(local.target));
    } catch {
      return undefined;
    }
  }
  if (local.target.startsWith("~")) return undefined;
  return path.resolve(base, local.target);
}

/** Pure: the requirement pointing at `target` (an absolute path) instead, name and markers kept. */
export function withTarget(local: LocalRequirement, target: string): string {
  return local.name ? `${local.name} @ ${pathToFileURL(target).href}${local.markers}` : `${target}${local.markers}`;
}
