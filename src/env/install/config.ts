// Host side of the install sandbox: which installer config files and local package folders an install needs to see.

import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { MappedFile } from "./bwrap-policy.js";
import type { IndexOptions } from "../index-options.js";

/** Keys (pip.conf, uv.toml, PIP_*, UV_* without the prefix) whose values name package sources or certificates. */
const SOURCE_KEYS = new Set([
  "index-url",
  "extra-index-url",
  "find-links",
  "index",
  "default-index",
  "cert",
  "client-cert",
  "constraint",
  "requirement",
  "build-constraint",
  "constraint-dependencies",
  "override",
]);

/** What the install must see of the host's installer configuration. */
export interface InstallerConfig {
  /** User config files, each mapped to its place in the private HOME (or kept at its path when outside the home). */
  files: MappedFile[];
  /** Variables to set inside (PIP_CONFIG_FILE / UV_CONFIG_FILE rewritten to their inside paths). */
  env: Record<string, string>;
  /** Local folders and files that the config, the environment or the spec name as package sources. */
  localSources: string[];
  /** http(s) index URLs the host's own config and PIP_* / UV_* variables name (never the spec's: see sources.ts). */
  urls: string[];
}

/** Pure: the http(s) URLs in one config value (uv's "name=url" spelling included). */
export function remoteUrlsIn(value: string): string[] {
  const out: string[] = [];
  for (const word of value.split(/\s+/)) {
    const url = word.replace(/^[\w.-]+=(?=https?:)/i, "");
    if (/^https?:\/\//i.test(url)) out.push(url);
  }
  return out;
}

/** Pure: one config value, or an env var's, split into the local paths it names (file:// URLs and absolute paths). */
export function localPathsIn(value: string): string[] {
  const out: string[] = [];
  for (let word of value.split(/\s+/)) {
    word = word.replace(/^[\w.-]+=(?=(file:|\/))/, ""); // uv's UV_INDEX="name=url"
    if (word.startsWith("file://")) {
      try {
        out.push(fileURLToPath(word.split("#")[0]!));
      } catch {
        // not a local file URL (file://host/...): nothing to bind
      }
    } else if (word.startsWith("/")) out.push(path.normalize(word));
  }
  return out;
}

/** Pure: the values of source keys in a pip.conf (INI; a value may continue on indented lines), as `pick` splits them. */
export function pipConfSources(text: string, pick: (value: string) => string[] = localPathsIn): string[] {
  const out: string[] = [];
  let current: string | undefined;
  for (const line of text.split("\n")) {
    if (/^\s*[#;]/.test(line) || line.trim() === "") continue;
    if (/^\s+\S/.test(line) && current !== undefined) {
      if (SOURCE_KEYS.has(current)) out.push(...pick(line.trim()));
      continue;
    }
    const m = /^([\w-]+)\s*[=:]\s*(.*)$/.exec(line.trim());
    current = m ? m[1]!.toLowerCase().replaceAll("_", "-") : undefined;
    if (m && SOURCE_KEYS.has(current!)) out.push(...pick(m[2]!));
  }
  return out;
}

/** Pure: local paths (or, with `pick` = remoteUrlsIn, URLs) named by quoted strings in a uv.toml (index URLs, find-links, `[[index]] url`). */
export function uvTomlSources(text: string, pick: (value: string) => string[] = localPathsIn): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/["']((?:file:\/\/|https?:\/\/|\/)[^"'\n]*)["']/gi)) out.push(...pick(m[1]!));
  return out;
}

/** Pure: a PEP 503 index folder named "simple" usually links to files beside it (../../files/x.whl): bind its parent. */
export function sourceRoot(p: string): string {
  return path.basename(p) === "simple" && path.dirname(p) !== "/" ? path.dirname(p) : p;
}

const exists = (file: string): Promise<boolean> =>
  stat(file).then(
    () => true,
    () => false,
  );
const read = (file: string): Promise<string> => readFile(file, "utf8").catch(() => "");

/** Where a host file appears inside: under the private HOME when it is in the host's home, else at its own path. */
export function insidePath(file: string, hostHome: string, insideHome: string): string {
  const rel = hostHome ? path.relative(hostHome, file) : "..";
  return rel && !rel.startsWith("..") && !path.isAbsolute(rel) ? path.join(insideHome, rel) : file;
}

interface ConfigFileSpec {
  /** The file on the host. */
  file: string;
  kind: "pip" | "uv";
  /** The env var that names it, when it came from one (rewritten inside). */
  envVar?: string;
}

function userConfigFiles(env: NodeJS.ProcessEnv, home: string): ConfigFileSpec[] {
  const configHome = env.XDG_CONFIG_HOME || path.join(home, ".config");
  const files: ConfigFileSpec[] = [];
  // PIP_CONFIG_FILE replaces the user files (pip's own rule); os.devnull means "no config".
  if (env.PIP_CONFIG_FILE && env.PIP_CONFIG_FILE !== "/dev/null")
    files.push({ file: env.PIP_CONFIG_FILE, kind: "pip", envVar: "PIP_CONFIG_FILE" });
  else if (home)
    files.push(
      { file: path.join(home, ".pip", "pip.conf"), kind: "pip" },
      { file: path.join(configHome, "pip", "pip.conf"), kind: "pip" },
    );
  if (env.UV_CONFIG_FILE) files.push({ file: env.UV_CONFIG_FILE, kind: "uv", envVar: "UV_CONFIG_FILE" });
  else if (home) files.push({ file: path.join(configHome, "uv", "uv.toml"), kind: "uv" });
  return files;
}

/**
 * Read the host's pip and uv configuration (user files, system files, PIP_* / UV_* variables) and the spec's
 * index options, and say what an install sandbox must show: the user files moved into the private HOME, and
 * every local folder named as a package source. Only paths are collected; nothing is fetched.
 */
export async function readInstallerConfig(
  env: NodeJS.ProcessEnv,
  index: IndexOptions,
  hostHome: string,
  insideHome: string,
  systemFiles: readonly string[],
): Promise<InstallerConfig> {
  const files: MappedFile[] = [];
  const insideEnv: Record<string, string> = {};
  const sources: string[] = [];
  const urls: string[] = [];
  const parse = (kind: "pip" | "uv", text: string): string[] => {
    urls.push(...(kind === "pip" ? pipConfSources(text, remoteUrlsIn) : uvTomlSources(text, remoteUrlsIn)));
    return kind === "pip" ? pipConfSources(text) : uvTomlSources(text);
  };

  for (const spec of userConfigFiles(env, hostHome)) {
    const file = path.resolve(spec.file);
    if (!(await exists(file))) continue;
    const inside = insidePath(file, hostHome, insideHome);
    files.push({ host: file, inside });
    if (spec.envVar) insideEnv[spec.envVar] = inside;
    sources.push(...parse(spec.kind, await read(file)));
  }
  for (const file of systemFiles) sources.push(...parse(file.endsWith(".toml") ? "uv" : "pip", await read(file)));
  for (const [key, value] of Object.entries(env)) {
    const m = /^(PIP|UV)_(.+)$/.exec(key);
    if (value && m && SOURCE_KEYS.has(m[2]!.toLowerCase().replaceAll("_", "-"))) {
      sources.push(...localPathsIn(value));
      urls.push(...remoteUrlsIn(value));
    }
  }
  for (const url of [index.indexUrl ?? "", ...index.extraIndexUrls]) sources.push(...localPathsIn(url).map(sourceRoot));
  for (const dir of index.findLinks) sources.push(...(dir.includes("://") ? localPathsIn(dir) : [path.resolve(dir)]));
  return { files, env: insideEnv, localSources: [...new Set(sources.map(sourceRoot))], urls: [...new Set(urls)] };
}
