// Decide how one dependency install is confined, and turn that into a wrapper for uv's or pip's argv and environment.

import { mkdir, stat } from "node:fs/promises";
import { homedir } from "node:os";
import path from "node:path";
import { SandboxUnavailableError } from "../errors.js";
import { LANDLOCK_NET_ABI } from "../sandbox/choose.js";
import { detectSandbox } from "../sandbox/detect.js";
import { readSystemLinks, resolvePythonInstall, type BaseInterpreter } from "../sandbox/host.js";
import { buildInstallBwrapArgs, INSTALL_HOME, SYSTEM_INSTALLER_CONFIG } from "../sandbox/install-policy.js";
import { dangerReason } from "../sandbox/path-guard.js";
import type { SandboxCapabilities } from "../sandbox/types.js";
import type { IndexOptions } from "./backend.js";
import { readInstallerConfig } from "./install-config.js";
import { makePrivateInstallDirs, prepareLandlockInstall, removePrivateInstallDirs, type PrivateInstallDirs } from "./install-landlock.js";
import type { InstallSandboxKind, InstallSandboxOptions, ProgressEvent } from "./types.js";

/** A confined install: what to run instead of an argv, and with which environment. */
export interface InstallSandbox {
  kind: Exclude<InstallSandboxKind, "none">;
  wrap(argv: readonly string[]): string[];
  env: NodeJS.ProcessEnv;
  /** The package cache this install writes (per environment name, see docs/environments.md). */
  cacheDir: string;
  /** Remove what the sandbox made for this install (Landlock's private home and tmp); idempotent. */
  dispose(): Promise<void>;
}

/** Host variables an install keeps: locale, search path, proxies, CA bundles, and the installers' own settings. */
const KEPT = /^(PATH|LANG|LANGUAGE|LC_[A-Z_]+|TZ|(http|https|no|all)_proxy|(HTTP|HTTPS|NO|ALL)_PROXY|SSL_CERT_(FILE|DIR)|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE|SOURCE_DATE_EPOCH|PIP_\w+|UV_\w+)$/;
/** Installer settings that would point outside the sandbox, or that the sandbox sets itself. */
const OVERRIDDEN = /^(PIP_CACHE_DIR|UV_CACHE_DIR|PIP_CONFIG_FILE|UV_CONFIG_FILE|UV_LINK_MODE|UV_PYTHON_INSTALL_DIR|UV_TOOL_DIR)$/;

/** The per-environment package cache: venvRoot/.cache/<name>/<backend> (a dot folder: never an environment's name). */
export function installCacheDir(venvRoot: string, name: string, backend: "uv" | "pip"): string {
  return path.join(venvRoot, ".cache", name, backend);
}

/**
 * Pure: the environment uv/pip see inside the sandbox: an allow-list of the host's, then the sandbox's own settings.
 * `dirs`: the private HOME and TMPDIR as the install sees them (bwrap's tmpfs by default; host folders under Landlock).
 */
export function installEnv(
  host: NodeJS.ProcessEnv,
  backend: "uv" | "pip",
  cacheDir: string,
  configEnv: Record<string, string>,
  dirs: { home: string; tmp: string } = { home: INSTALL_HOME, tmp: "/tmp" },
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(host)) if (value !== undefined && KEPT.test(key) && !OVERRIDDEN.test(key)) env[key] = value;
  env.PATH ??= "/usr/local/bin:/usr/bin:/bin";
  env.HOME = dirs.home;
  env.TMPDIR = dirs.tmp;
  Object.assign(env, configEnv);
  if (backend === "uv") {
    env.UV_CACHE_DIR = cacheDir;
    // Copy, never hardlink: the cache and the venv are separate mounts, and a venv must not share inodes with a cache build code can write.
    env.UV_LINK_MODE = "copy";
  } else env.PIP_CACHE_DIR = cacheDir;
  return env;
}

/** Which confinement one install gets, or why none can be had (with the remedy of the host's first gap). */
export type InstallBackendChoice =
  | { kind: Exclude<InstallSandboxKind, "none">; note?: string }
  | { kind: "none"; reason: string; remedy: string[] };

/**
 * Pure: the install backend from the options and detection. `auto` takes bwrap (or bwrap without a user
 * namespace), else Landlock; a named backend is taken only if it can run. Landlock before ABI 4 cannot block
 * TCP, so it is refused when the install asks for no network.
 */
export function chooseInstallBackend(options: Pick<InstallSandboxOptions, "backend" | "network">, caps: SandboxCapabilities): InstallBackendChoice {
  const wanted = options.backend ?? "auto";
  const gap = caps.gaps[0];
  const bwrapWhy = caps.bwrap && (caps.backend === "bwrap" || caps.backend === "bwrap-degraded") ? undefined : `bubblewrap cannot run here${gap ? `: ${gap.problem}` : ""}`;
  let landlockWhy: string | undefined;
  if (caps.landlockAbi === 0) landlockWhy = "the kernel offers no Landlock";
  else if (options.network === false && caps.landlockAbi < LANDLOCK_NET_ABI)
    landlockWhy = `Landlock ABI ${caps.landlockAbi} cannot block TCP (needs ABI ${LANDLOCK_NET_ABI}), and sandbox.network is false`;
  const landlock = (note?: string): InstallBackendChoice => ({ kind: "landlock", ...(note ? { note } : {}) });
  const bwrapKind = (): InstallBackendChoice => ({ kind: caps.backend === "bwrap" ? "bwrap" : "bwrap-degraded" });
  const remedy = gap?.remedy ?? [];
  if (wanted === "bwrap") return bwrapWhy ? { kind: "none", reason: `installing dependencies needs bubblewrap, and ${bwrapWhy}`, remedy } : bwrapKind();
  if (wanted === "landlock") return landlockWhy ? { kind: "none", reason: `installing dependencies under Landlock is not possible: ${landlockWhy}`, remedy } : landlock();
  if (!bwrapWhy) return bwrapKind();
  if (!landlockWhy) return landlock(`${bwrapWhy}; confining the install with Landlock instead`);
  return { kind: "none", reason: `installing dependencies needs bubblewrap or Landlock: ${bwrapWhy}; ${landlockWhy}`, remedy };
}

export interface InstallSandboxRequest {
  options: InstallSandboxOptions;
  backend: "uv" | "pip";
  venvRoot: string;
  name: string;
  /** The venv being built (created already: its pyvenv.cfg names the Python install; its bin/python runs the Landlock launcher). */
  buildDir: string;
  index: IndexOptions;
  /** The base interpreter the host resolved (real path): what the sandbox binds as the Python install, never pyvenv.cfg's. */
  python: BaseInterpreter;
  /** Executables the install runs that live outside the Python install (uv's real binary); asked only when confining. */
  tools: () => Promise<string[]>;
  hostEnv: NodeJS.ProcessEnv;
  emit: (e: ProgressEvent) => void;
}

/**
 * The sandbox for one install, or undefined to run it as is (mode "disabled", or "preferred" on a host with
 * neither bwrap nor Landlock, after a warning). Throws SandboxUnavailableError in mode "required" when the
 * backend asked for (default: bwrap, else Landlock) cannot run here.
 */
export async function prepareInstallSandbox(req: InstallSandboxRequest): Promise<InstallSandbox | undefined> {
  const { options, emit } = req;
  if (options.mode === "disabled") {
    emit({ stage: "install", message: "install sandbox disabled: uv/pip and any sdist build code run with this process's rights" });
    return undefined;
  }
  const caps = await detectSandbox({ bwrapPath: options.bwrapPath, env: req.hostEnv });
  let choice = chooseInstallBackend(options, caps);
  if (choice.kind === "none" && options.mode === "preferred" && (options.backend ?? "auto") !== "auto") {
    // As at run time: in "preferred" mode a named backend that cannot run gives way to the best of the others.
    const best = chooseInstallBackend({ ...options, backend: "auto" }, caps);
    if (best.kind !== "none") choice = { kind: best.kind, note: `${choice.reason}; using ${best.kind} instead` };
  }
  if (choice.kind === "none") {
    if (options.mode === "required") throw new SandboxUnavailableError(req.name, choice.reason, { model: caps.model, remedy: choice.remedy });
    emit({ stage: "install", message: `${choice.reason}; installing WITHOUT a sandbox (sandbox.mode is "preferred")`, warning: true });
    return undefined;
  }
  if (choice.note) emit({ stage: "install", message: `install sandbox: ${choice.note}` });
  if (choice.kind !== "landlock") return prepareConfined(req, choice.kind, caps, undefined);
  const dirs = await makePrivateInstallDirs();
  return prepareConfined(req, choice.kind, caps, dirs).catch(async (err: unknown) => {
    await removePrivateInstallDirs(dirs);
    throw err;
  });
}

async function prepareConfined(
  req: InstallSandboxRequest,
  kind: InstallSandbox["kind"],
  caps: SandboxCapabilities,
  dirs: PrivateInstallDirs | undefined,
): Promise<InstallSandbox> {
  const { options, emit } = req;
  const hostHome = req.hostEnv.HOME || homedir();
  const config = await readInstallerConfig(req.hostEnv, req.index, hostHome, dirs?.home ?? INSTALL_HOME, SYSTEM_INSTALLER_CONFIG);
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
  const pythonInstall = await resolvePythonInstall(req.python);
  const policy = {
    network: options.network ?? true,
    buildDir: req.buildDir,
    cacheDir,
    readonlyPaths: [...pythonInstall, ...(await req.tools()), ...sources],
    configFiles: config.files,
    systemLinks: await readSystemLinks(),
  };
  const env = installEnv(req.hostEnv, req.backend, cacheDir, config.env, dirs);
  if (dirs) {
    // The recorded base interpreter runs the launcher: nothing of the venv runs before the confinement.
    const landlock = await prepareLandlockInstall({ ...policy, dirs, python: req.python.python });
    const what = `landlock (ABI ${caps.landlockAbi})${policy.network ? "" : ", no TCP"}`;
    emit({ stage: "install", message: `install sandbox: ${what}; writable: ${req.buildDir}, ${cacheDir}, private home and tmp in ${dirs.root}` });
    return { kind, wrap: landlock.wrap, env: { ...env, ...landlock.env }, cacheDir, dispose: () => removePrivateInstallDirs(dirs) };
  }
  const bwrapArgs = buildInstallBwrapArgs(policy, caps.namespaces);
  emit({ stage: "install", message: `install sandbox: ${kind}${policy.network ? "" : ", no network"}; writable: ${req.buildDir}, ${cacheDir}` });
  return {
    kind,
    wrap: (argv) => [caps.bwrap!.path, ...bwrapArgs, "--", ...argv],
    env,
    cacheDir,
    dispose: async () => {},
  };
}
