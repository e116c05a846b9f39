// Decide how one dependency install is confined, and turn that into a wrapper for uv's or pip's argv and environment.

import { mkdir } from "node:fs/promises";
import { homedir } from "node:os";
import path from "node:path";
import { SandboxUnavailableError } from "../../errors.js";
import { detectSandbox } from "../../sandbox/detect.js";
import { readSystemLinks, resolvePythonInstall, type BaseInterpreter } from "../../sandbox/host.js";
import { buildInstallBwrapArgs, INSTALL_HOME, installReadOnlyBinds, SYSTEM_INSTALLER_CONFIG } from "./bwrap-policy.js";
import { dangerReason } from "../../sandbox/path-guard.js";
import { PathPins } from "../../sandbox/pin-set.js";
import type { SandboxCapabilities } from "../../sandbox/types.js";
import type { IndexOptions } from "../index-options.js";
import { readInstallerConfig, type InstallerConfig } from "./config.js";
import {
  makePrivateInstallDirs,
  prepareLandlockInstall,
  removePrivateInstallDirs,
  type PrivateInstallDirs,
} from "./landlock.js";
import {
  behindForwarder,
  describeNet,
  forwarderBinds,
  INSIDE_PROXY_PORT,
  installNetworkFor,
  proxyEnv,
  startInstallNet,
  type InstallNet,
} from "./net-setup.js";
import { chooseInstallBackend } from "./choice.js";
import { planLocalDependencies, withStage, type LocalDependencies } from "./local-deps.js";
import { checkExtensionSources, extensionSources } from "./sources.js";
import type { InstallSandboxKind, InstallSandboxOptions, ProgressEvent } from "../types.js";

/** A confined install: what to run instead of an argv, and with which environment. */
export interface InstallSandbox {
  kind: Exclude<InstallSandboxKind, "none">;
  wrap(argv: readonly string[]): string[];
  env: NodeJS.ProcessEnv;
  /** The requirements as the installer inside must name them (local folders as their copies; see local-deps.ts). */
  dependencies: string[];
  /** Host descriptors of the pinned paths, inherited by each wrapped command from fd 6 on (see `PathPins`). */
  fds: readonly number[];
  /** The package cache this install writes (per environment name, see docs/environments.md). */
  cacheDir: string;
  /** Remove what the sandbox made for this install (Landlock's private home and tmp) and close its pins; idempotent. */
  dispose(): Promise<void>;
}

/** Host variables an install keeps: locale, search path, proxies, CA bundles, and the installers' own settings. */
const KEPT =
  /^(PATH|LANG|LANGUAGE|LC_[A-Z_]+|TZ|(http|https|no|all)_proxy|(HTTP|HTTPS|NO|ALL)_PROXY|SSL_CERT_(FILE|DIR)|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE|SOURCE_DATE_EPOCH|PIP_\w+|UV_\w+)$/;
/** Installer settings that would point outside the sandbox, or that the sandbox sets itself. */
const OVERRIDDEN =
  /^(PIP_CACHE_DIR|UV_CACHE_DIR|PIP_CONFIG_FILE|UV_CONFIG_FILE|UV_LINK_MODE|UV_PYTHON_INSTALL_DIR|UV_TOOL_DIR)$/;

/** The per-environment package cache: venvRoot/.cache/<name>/<installer> (a dot folder: never an environment's name). */
export function installCacheDir(venvRoot: string, name: string, installer: "uv" | "pip"): string {
  return path.join(venvRoot, ".cache", name, installer);
}

/**
 * Pure: the environment uv/pip see inside the sandbox: an allow-list of the host's, then the sandbox's own settings.
 * `dirs`: the private HOME and TMPDIR as the install sees them (bwrap's tmpfs by default; host folders under Landlock).
 */
export function installEnv(
  host: NodeJS.ProcessEnv,
  installer: "uv" | "pip",
  cacheDir: string,
  configEnv: Record<string, string>,
  dirs: { home: string; tmp: string } = { home: INSTALL_HOME, tmp: "/tmp" },
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(host))
    if (value !== undefined && KEPT.test(key) && !OVERRIDDEN.test(key)) env[key] = value;
  env.PATH ??= "/usr/local/bin:/usr/bin:/bin";
  env.HOME = dirs.home;
  env.TMPDIR = dirs.tmp;
  Object.assign(env, configEnv);
  if (installer === "uv") {
    env.UV_CACHE_DIR = cacheDir;
    // Copy, never hardlink: the cache and the venv are separate mounts, and a venv must not share inodes with a cache build code can write.
    env.UV_LINK_MODE = "copy";
  } else env.PIP_CACHE_DIR = cacheDir;
  return env;
}

export { chooseInstallBackend, type InstallBackendChoice } from "./choice.js";

export interface InstallSandboxRequest {
  options: InstallSandboxOptions;
  installer: "uv" | "pip";
  venvRoot: string;
  name: string;
  /** The venv being built (created already: its pyvenv.cfg names the Python install; its bin/python runs the Landlock launcher). */
  buildDir: string;
  /** The requirements to install: local paths among them are bound read-only (and folders copied inside). Default none. */
  dependencies?: readonly string[];
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
  // Whatever the mode: an extension's yaml never names a host folder as a package source (ConfigError naming the key).
  await checkExtensionSources(extensionSources(req.index, options.trustedIndex), options.extensionDir);
  if (options.mode === "disabled") {
    emit({
      stage: "install",
      message: "install sandbox disabled: uv/pip and any sdist build code run with this process's rights",
    });
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
    if (options.mode === "required")
      throw new SandboxUnavailableError(req.name, choice.reason, { model: caps.model, remedy: choice.remedy });
    emit({
      stage: "install",
      message: `${choice.reason}; installing WITHOUT a sandbox (sandbox.mode is "preferred")`,
      warning: true,
    });
    return undefined;
  }
  if (choice.note) emit({ stage: "install", message: `install sandbox: ${choice.note}` });
  // Every host path the install gets is opened once here and bound or ruled by that descriptor (see PathPins).
  const pins = new PathPins();
  const dirs = choice.kind === "landlock" ? await makePrivateInstallDirs() : undefined;
  return prepareConfined(req, choice.kind, caps, dirs, pins).catch(async (err: unknown) => {
    pins.close();
    if (dirs) await removePrivateInstallDirs(dirs);
    throw err;
  });
}

async function prepareConfined(
  req: InstallSandboxRequest,
  kind: InstallSandbox["kind"],
  caps: SandboxCapabilities,
  dirs: PrivateInstallDirs | undefined,
  pins: PathPins,
): Promise<InstallSandbox> {
  const { emit } = req;
  const hostHome = req.hostEnv.HOME || homedir();
  const config = await readInstallerConfig(
    req.hostEnv,
    req.index,
    hostHome,
    dirs?.home ?? INSTALL_HOME,
    SYSTEM_INSTALLER_CONFIG,
  );
  const host = { home: hostHome, tmp: "/tmp" };
  const sources: string[] = [];
  for (const p of config.localSources) {
    // A single file the config names (a constraints file, a CA bundle under /etc) is fine; a folder must not open the house.
    // Judged where it leads as well as by name: it is resolved and pinned here once, and that object is what gets bound.
    const pinned = pins.pinSpellingIfExists(p, "install");
    const isFile = pinned ? !pinned.directory : false;
    const danger = dangerReason(p, host) ?? (pinned ? dangerReason(pinned.path, host) : undefined);
    const why = isFile && !danger?.startsWith("it exposes") ? undefined : danger;
    if (why) emit({ stage: "install", message: `install sandbox: not exposing package source ${p} (${why})` });
    else sources.push(p);
  }
  const cacheDir = installCacheDir(req.venvRoot, req.name, req.installer);
  await mkdir(cacheDir, { recursive: true });
  const pythonInstall = await resolvePythonInstall(req.python);
  // Pinned as they are resolved, bound at the spelling given; a read-only path that does not exist is left out.
  for (const dir of [req.buildDir, cacheDir]) pins.pinSpelling(dir, "install");
  const rules = {
    trusted: req.options.trustedDependencies,
    extensionDir: req.options.extensionDir,
    roots: req.options.dependencyRoots,
  };
  const locals = planLocalDependencies(req.dependencies ?? [], pins, dirs?.tmp ?? "/tmp", host, rules);
  const readonlyPaths = [...pythonInstall, ...(await req.tools()), ...sources].filter((p) =>
    pins.pinSpellingIfExists(p, "install"),
  );
  readonlyPaths.push(...locals.binds);
  const plan = installNetworkFor(req, config);
  const refused = (line: string): void =>
    emit({ stage: "install", message: `install proxy: refused ${line}`, warning: true });
  const net = await startInstallNet(plan, dirs ? "landlock" : "bwrap", refused);
  try {
    return await confine(req, kind, caps, dirs, pins, config, net, readonlyPaths, cacheDir, locals);
  } catch (err) {
    await net.close();
    throw err;
  }
}

async function confine(
  req: InstallSandboxRequest,
  kind: InstallSandbox["kind"],
  caps: SandboxCapabilities,
  dirs: PrivateInstallDirs | undefined,
  pins: PathPins,
  config: InstallerConfig,
  net: InstallNet,
  readonlyPaths: string[],
  cacheDir: string,
  locals: LocalDependencies,
): Promise<InstallSandbox> {
  const { emit } = req;
  const policy = {
    network: net.network.mode === "host",
    buildDir: req.buildDir,
    cacheDir,
    readonlyPaths,
    configFiles: config.files,
    systemLinks: await readSystemLinks(),
  };
  // The recorded base interpreter runs the launcher and the forwarder, never the venv's bin/python (install code's).
  const python = req.python.python;
  const base = installEnv(req.hostEnv, req.installer, cacheDir, config.env, dirs);
  if (dirs) {
    const port = net.proxy?.port;
    // The recorded base interpreter runs the launcher: nothing of the venv runs before the confinement.
    const landlock = await prepareLandlockInstall({
      ...policy,
      dirs,
      pins,
      python,
      ...(port !== undefined ? { proxyPort: port } : {}),
    });
    const env = port !== undefined ? proxyEnv(base, `http://127.0.0.1:${port}`) : base;
    emit({
      stage: "install",
      message: `install sandbox: landlock (ABI ${caps.landlockAbi}), ${describeNet(net)}; writable: ${req.buildDir}, ${cacheDir}, private home and tmp in ${dirs.root}`,
    });
    const dispose = async (): Promise<void> => {
      pins.close();
      await net.close();
      await removePrivateInstallDirs(dirs);
    };
    const wrap = (argv: readonly string[]): string[] => landlock.wrap(withStage(python, locals.copies, argv));
    return {
      kind,
      wrap,
      env: { ...env, ...landlock.env },
      fds: landlock.fds,
      cacheDir,
      dependencies: locals.dependencies,
      dispose,
    };
  }
  // Only what bwrap binds is handed over (it closes each after its mount): no host descriptor reaches the install.
  const child = pins.forChild([...installReadOnlyBinds(policy), req.buildDir, cacheDir]);
  const socket = net.socketPath;
  const bwrapArgs = [
    ...buildInstallBwrapArgs({ ...policy, pinned: child.childFd }, caps.namespaces),
    ...(socket ? forwarderBinds(socket) : []),
  ];
  emit({
    stage: "install",
    message: `install sandbox: ${kind}, ${describeNet(net)}; writable: ${req.buildDir}, ${cacheDir}`,
  });
  return {
    kind,
    wrap: (argv) => {
      const staged = withStage(python, locals.copies, argv);
      return [caps.bwrap!.path, ...bwrapArgs, "--", ...(socket ? behindForwarder(python, staged) : staged)];
    },
    dependencies: locals.dependencies,
    env: socket ? proxyEnv(base, `http://127.0.0.1:${INSIDE_PROXY_PORT}`) : base,
    fds: child.hostFds,
    cacheDir,
    dispose: async () => {
      pins.close();
      await net.close();
    },
  };
}
