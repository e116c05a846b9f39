// Decide how one dependency install is confined, and turn that into a wrapper for uv's or pip's argv and environment.

import { mkdir, stat } from "node:fs/promises";
import { homedir } from "node:os";
import path from "node:path";
import { SandboxUnavailableError } from "../errors.js";
import { detectSandbox } from "../sandbox/detect.js";
import { readSystemLinks, resolvePythonInstall } from "../sandbox/host.js";
import { buildInstallBwrapArgs, INSTALL_HOME, SYSTEM_INSTALLER_CONFIG } from "../sandbox/install-policy.js";
import { dangerReason } from "../sandbox/path-guard.js";
import type { IndexOptions } from "./backend.js";
import { readInstallerConfig } from "./install-config.js";
import type { InstallSandboxKind, InstallSandboxOptions, ProgressEvent } from "./types.js";

/** A confined install: what to run instead of an argv, and with which environment. */
export interface InstallSandbox {
  kind: Exclude<InstallSandboxKind, "none">;
  wrap(argv: readonly string[]): string[];
  env: NodeJS.ProcessEnv;
  /** The package cache this install writes (per environment name, see docs/environments.md). */
  cacheDir: string;
}

/** Host variables an install keeps: locale, search path, proxies, CA bundles, and the installers' own settings. */
const KEPT = /^(PATH|LANG|LANGUAGE|LC_[A-Z_]+|TZ|(http|https|no|all)_proxy|(HTTP|HTTPS|NO|ALL)_PROXY|SSL_CERT_(FILE|DIR)|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE|SOURCE_DATE_EPOCH|PIP_\w+|UV_\w+)$/;
/** Installer settings that would point outside the sandbox, or that the sandbox sets itself. */
const OVERRIDDEN = /^(PIP_CACHE_DIR|UV_CACHE_DIR|PIP_CONFIG_FILE|UV_CONFIG_FILE|UV_LINK_MODE|UV_PYTHON_INSTALL_DIR|UV_TOOL_DIR)$/;

/** The per-environment package cache: venvRoot/.cache/<name>/<backend> (a dot folder: never an environment's name). */
export function installCacheDir(venvRoot: string, name: string, backend: "uv" | "pip"): string {
  return path.join(venvRoot, ".cache", name, backend);
}

/** Pure: the environment uv/pip see inside the sandbox: an allow-list of the host's, then the sandbox's own settings. */
export function installEnv(host: NodeJS.ProcessEnv, backend: "uv" | "pip", cacheDir: string, configEnv: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(host)) if (value !== undefined && KEPT.test(key) && !OVERRIDDEN.test(key)) env[key] = value;
  env.PATH ??= "/usr/local/bin:/usr/bin:/bin";
  env.HOME = INSTALL_HOME;
  env.TMPDIR = "/tmp";
  Object.assign(env, configEnv);
  if (backend === "uv") {
    env.UV_CACHE_DIR = cacheDir;
    // Copy, never hardlink: the cache and the venv are separate mounts, and a venv must not share inodes with a cache build code can write.
    env.UV_LINK_MODE = "copy";
  } else env.PIP_CACHE_DIR = cacheDir;
  return env;
}

export interface InstallSandboxRequest {
  options: InstallSandboxOptions;
  backend: "uv" | "pip";
  venvRoot: string;
  name: string;
  /** The venv being built (created already: its pyvenv.cfg names the Python install). */
  buildDir: string;
  index: IndexOptions;
  /** Executables the install runs that live outside the Python install (uv's real binary); asked only when confining. */
  tools: () => Promise<string[]>;
  hostEnv: NodeJS.ProcessEnv;
  emit: (e: ProgressEvent) => void;
}

/**
 * The sandbox for one install, or undefined to run it as is (mode "disabled", or "preferred" on a host without
 * bwrap, after a warning). Throws SandboxUnavailableError in mode "required" when bwrap cannot run here.
 */
export async function prepareInstallSandbox(req: InstallSandboxRequest): Promise<InstallSandbox | undefined> {
  const { options, emit } = req;
  if (options.mode === "disabled") {
    emit({ stage: "install", message: "install sandbox disabled: uv/pip and any sdist build code run with this process's rights" });
    return undefined;
  }
  const caps = await detectSandbox({ bwrapPath: options.bwrapPath, env: req.hostEnv });
  const usable = caps.bwrap && (caps.backend === "bwrap" || caps.backend === "bwrap-degraded");
  if (!usable) {
    const gap = caps.gaps[0];
    const reason = `installing dependencies needs bubblewrap, and it cannot run here${gap ? `: ${gap.problem}` : ""}`;
    if (options.mode === "required") throw new SandboxUnavailableError(req.name, reason, { model: caps.model, remedy: gap?.remedy ?? [] });
    emit({ stage: "install", message: `${reason}; installing WITHOUT a sandbox (sandbox.mode is "preferred")`, warning: true });
    return undefined;
  }

  const hostHome = req.hostEnv.HOME || homedir();
  const config = await readInstallerConfig(req.hostEnv, req.index, hostHome, INSTALL_HOME, SYSTEM_INSTALLER_CONFIG);
  const host = { home: hostHome, tmp: "/tmp" };
  const sources: string[] = [];
  for (const p of config.localSources) {
    // A single file the config names (a constraints file, a CA bundle under /etc) is fine; a folder must not open the house.
    const isFile = await stat(p).then((s) => s.isFile(), () => false);
    const danger = dangerReason(p, host);
    const why = isFile && !danger?.startsWith("it exposes") ? undefined : danger;
    if (why) emit({ stage: "install", message: `install sandbox: not exposing package source ${p} (${why})` });
    else sources.push(p);
  }
  const cacheDir = installCacheDir(req.venvRoot, req.name, req.backend);
  await mkdir(cacheDir, { recursive: true });
  const pythonInstall = await resolvePythonInstall(req.buildDir);
  const policy = {
    network: options.network ?? true,
    buildDir: req.buildDir,
    cacheDir,
    readonlyPaths: [...pythonInstall, ...(await req.tools()), ...sources],
    configFiles: config.files,
    systemLinks: await readSystemLinks(),
  };
  const bwrapArgs = buildInstallBwrapArgs(policy, caps.namespaces);
  const kind: InstallSandbox["kind"] = caps.backend === "bwrap" ? "bwrap" : "bwrap-degraded";
  emit({ stage: "install", message: `install sandbox: ${kind}${policy.network ? "" : ", no network"}; writable: ${req.buildDir}, ${cacheDir}` });
  return {
    kind,
    wrap: (argv) => [caps.bwrap!.path, ...bwrapArgs, "--", ...argv],
    env: installEnv(req.hostEnv, req.backend, cacheDir, config.env),
    cacheDir,
  };
}
