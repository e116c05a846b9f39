// What an extension's own pyisolate.yaml may say: it narrows and names versions and packages, never host paths or code.

import { realpathSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError } from "../errors.js";
import { localTargetPath, parseLocalRequirement, withTarget } from "../env/local-requirement.js";
import { FILE_ENV_MAX_VALUE, fileMaySetEnv, isPreConfinementVariable } from "./env-policy.js";
import type { ExtensionOptions } from "./options.js";

/** Keys the file may set at all; anything else (tensorTransport, name, modulePath, fileEnv, ...) is the host's. */
export const FILE_KEYS: readonly string[] = [
  "dependencies",
  "python",
  "env",
  "extensionClass",
  "indexUrl",
  "extraIndexUrls",
  "findLinks",
  "installer",
  // The installer's deprecated name: read as `installer`, with a warning (renamed.ts).
  "backend",
  "sandbox",
  "callTimeoutMs",
  "startTimeoutMs",
  "sharedRuntime",
  "systemSitePackages",
  "services",
  "limits",
  // Narrowed into the code's policy, never widening it (lifecycle/restart-policy.ts, narrowRestartPolicy).
  "restart",
] satisfies readonly (keyof ExtensionOptions)[];

export type FileOptions = Partial<ExtensionOptions>;

/** What the host application's code options let the file do beyond the built-in rules. */
export interface FileAllowances {
  /** Variable names the file may set besides the built-in tuning knobs (`load({ fileEnv })`). */
  fileEnv?: readonly string[];
  /** Host folders or files the file's local dependencies may name besides its own folder (`load({ fileDependencyPaths })`). */
  dependencyPaths?: readonly string[];
  /** The manager's shared runtime layers (upstream `share_torch: true` takes the one named "torch"). */
  sharedRuntimes?: readonly string[];
  /** The code gave the extension the GPU (upstream `share_cuda_ipc` needs it). */
  gpu?: boolean;
  /** The extension's name as the code gave it. */
  name?: string;
  /** Where a note about the file goes: an upstream key accepted but meaningless or changed here (one per key). */
  onWarning?: (message: string) => void;
}

/** The longest start timeout the file may ask for: a hanging import should not hold a load for longer. */
export const FILE_MAX_START_TIMEOUT_MS = 600_000;
/** The longest call timeout the file may set (the default is none, so any value narrows; this keeps it finite). */
export const FILE_MAX_CALL_TIMEOUT_MS = 86_400_000;

const VERSION_ONLY = /^\d+(\.\d+){0,2}$/;
/** Schemes of remote package locations; `file:` and VCS over ssh or file are local or use the host's keys. */
const REMOTE_SCHEMES = new Set(["http:", "https:", "git+http:", "git+https:", "hg+https:", "svn+https:", "bzr+https:"]);
/** A requirement's project name and extras (PEP 508), before its version specifiers and markers. */
const NAME_AND_EXTRAS = /^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(\[[^\]]*\])?/;
/** Names pip and uv take for a local archive relative to their working folder, not for a project on an index. */
const ARCHIVE_NAME = /\.(whl|zip|egg|tar|tgz|tbz2?|txz|tlz|tar\.(gz|bz2|xz|lz|lzma))$/i;

function refuse(file: string, key: string, why: string): never {
  throw new ConfigError(`${file}: ${key}: ${why}`, { key, file });
}

function isAtOrUnder(p: string, root: string): boolean {
  return p === root || p.startsWith(`${root}/`);
}

function isRemoteUrl(value: string, schemes: ReadonlySet<string> = REMOTE_SCHEMES): boolean {
  try {
    return schemes.has(new URL(value).protocol);
  } catch {
    return false;
  }
}

/** Pure: why one requirement from the file that is not a local one (see fileLocalDependency) is refused, or undefined. */
export function fileRequirementProblem(requirement: string): string | undefined {
  const at = requirement.indexOf("@");
  if (at >= 0) {
    const name = NAME_AND_EXTRAS.exec(requirement.slice(0, at).trim());
    if (!name || name[0].length !== requirement.slice(0, at).trim().length)
      return "a direct reference must start with a project name";
    const url =
      requirement
        .slice(at + 1)
        .trim()
        .split(/[\s;]/)[0] ?? "";
    return isRemoteUrl(url)
      ? undefined
      : `"${url}" is not an http(s) URL (local paths and file: URLs are the host's to give)`;
  }
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(requirement)) {
    return isRemoteUrl(requirement.split(/[\s;]/)[0]!) ? undefined : "only http(s) URLs may name a package";
  }
  const name = NAME_AND_EXTRAS.exec(requirement);
  if (!name) return "not a requirement (a path or a file is the host's to give)";
  if (ARCHIVE_NAME.test(name[1]!)) return "names an archive file, which the installer would look for on the host";
  if (/[/\\~]/.test(requirement)) return "holds a path";
  return undefined;
}

/** The real paths of `paths` that exist (the host's `fileDependencyPaths`: a missing one allows nothing). */
export function realRoots(paths: readonly string[] = []): string[] {
  return paths.flatMap((p) => {
    try {
      return [realpathSync(p)];
    } catch {
      return [];
    }
  });
}

/**
 * A local dependency from the file, as the real path the installer gets: a folder or archive strictly inside the
 * extension's folder, or at or under a path the host's code lists; reached through no symbolic link either way.
 */
function fileLocalDependency(
  requirement: string,
  modulePath: string,
  file: string,
  allowed: readonly string[],
): string | undefined {
  const local = parseLocalRequirement(requirement);
  if (local === undefined) return undefined;
  const shown = JSON.stringify(requirement);
  const target = localTargetPath(local, modulePath);
  if (target === undefined)
    refuse(file, "dependencies", `${shown}: "${local.target}" is not a path in the extension folder`);
  let real: string;
  try {
    real = realpathSync(target);
  } catch {
    refuse(file, "dependencies", `${shown}: ${target} does not exist`);
  }
  if (real !== target) refuse(file, "dependencies", `${shown}: ${target} goes through a symbolic link (to ${real})`);
  const roots = realRoots(allowed);
  if (real === modulePath)
    refuse(
      file,
      "dependencies",
      `${shown}: ${real} is the extension folder itself, which is loaded as the extension, not installed`,
    );
  if (!isAtOrUnder(real, modulePath) && !roots.some((root) => isAtOrUnder(real, root))) {
    refuse(
      file,
      "dependencies",
      `${shown}: ${real} is outside the extension folder; a host path is the host application's to allow (load({ fileDependencyPaths }))`,
    );
  }
  return withTarget(local, real);
}

/** A findLinks entry from the file: an http(s) URL as is, else a folder strictly inside the extension's, made real. */
function fileFindLink(entry: string, modulePath: string, file: string): string {
  if (isRemoteUrl(entry, new Set(["http:", "https:"]))) return entry;
  let local = entry;
  if (entry.startsWith("file:")) {
    try {
      local = fileURLToPath(entry);
    } catch {
      refuse(file, "findLinks", `"${entry}" is not a local file URL`);
    }
  } else if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(entry))
    refuse(file, "findLinks", `"${entry}" is not an http(s) URL or a folder`);
  let real: string;
  try {
    // Symlinks are resolved: a link inside the folder that points outside it is outside.
    real = realpathSync(path.resolve(modulePath, local));
  } catch {
    refuse(file, "findLinks", `"${entry}" does not exist in the extension folder`);
  }
  // Strictly inside: the install sandbox binds a folder named "simple" by its parent (PEP 503 layouts).
  if (real === modulePath || !isAtOrUnder(real, modulePath)) {
    refuse(
      file,
      "findLinks",
      `"${entry}" is outside the extension folder (${real}); only load() can name host folders`,
    );
  }
  return real;
}

function checkEnv(env: Record<string, string>, file: string, allow: FileAllowances): void {
  for (const [name, value] of Object.entries(env)) {
    if (!fileMaySetEnv(name, allow.fileEnv)) {
      const why = isPreConfinementVariable(name)
        ? "it acts before the sandbox (loader, interpreter or host variable)"
        : "it is not on the allow-list";
      refuse(
        file,
        `env.${name}`,
        `the extension's config file may not set ${name}: ${why}; the host application can set it with load({ env }) or allow it with load({ fileEnv })`,
      );
    }
    if (value.length > FILE_ENV_MAX_VALUE)
      refuse(file, `env.${name}`, `the value is longer than ${FILE_ENV_MAX_VALUE} characters`);
  }
}

/**
 * Applies the trust boundary to options read from the file (already shape-checked): refuses what only the host may
 * say, and returns them with findLinks made real paths, so what was checked is what the installer gets.
 */
export function checkFileOptions(
  data: FileOptions,
  modulePath: string,
  file: string,
  allow: FileAllowances = {},
): FileOptions {
  const out: FileOptions = { ...data };
  if (data.python !== undefined && !VERSION_ONLY.test(data.python)) {
    refuse(
      file,
      "python",
      `"${data.python}" is not a version such as "3.11"; an interpreter path is the host application's to give`,
    );
  }
  if (data.env !== undefined) checkEnv(data.env, file, allow);
  for (const [key, urls] of [
    ["indexUrl", data.indexUrl === undefined ? [] : [data.indexUrl]],
    ["extraIndexUrls", data.extraIndexUrls ?? []],
  ] as const) {
    for (const url of urls)
      if (!isRemoteUrl(url, new Set(["http:", "https:"]))) refuse(file, key, `"${url}" is not an http(s) URL`);
  }
  if (data.findLinks !== undefined)
    out.findLinks = data.findLinks.map((entry) => fileFindLink(entry, modulePath, file));
  if (data.dependencies !== undefined) {
    out.dependencies = data.dependencies.map((requirement) => {
      const local = fileLocalDependency(requirement.trim(), modulePath, file, allow.dependencyPaths ?? []);
      if (local !== undefined) return local;
      const problem = fileRequirementProblem(requirement.trim());
      if (problem) refuse(file, "dependencies", `${JSON.stringify(requirement)}: ${problem}`);
      return requirement;
    });
  }
  if (data.systemSitePackages === true) {
    refuse(
      file,
      "systemSitePackages",
      "true widens what the extension sees (the base interpreter's packages); only load() can ask for it",
    );
  }
  if (data.startTimeoutMs !== undefined && data.startTimeoutMs > FILE_MAX_START_TIMEOUT_MS) {
    refuse(file, "startTimeoutMs", `at most ${FILE_MAX_START_TIMEOUT_MS} ms from the config file`);
  }
  if (data.callTimeoutMs !== undefined && data.callTimeoutMs > FILE_MAX_CALL_TIMEOUT_MS) {
    refuse(file, "callTimeoutMs", `at most ${FILE_MAX_CALL_TIMEOUT_MS} ms from the config file`);
  }
  return out;
}

/** Pure: the services one extension may call: the code's grant (all when absent), narrowed by the file's list. */
export function grantedServices(
  fromCode: readonly string[] | undefined,
  fromFile: readonly string[] | undefined,
): (name: string) => boolean {
  const code = fromCode === undefined ? undefined : new Set(fromCode);
  const file = fromFile === undefined ? undefined : new Set(fromFile);
  return (name) => (code === undefined || code.has(name)) && (file === undefined || file.has(name));
}
