// The environment builder's public types, the per-call job they become, and validation at the boundary.

import path from "node:path";
import { ConfigError } from "../errors.js";
import {
  INSTALLERS,
  isOneOf,
  quotedChoices,
  SANDBOX_MODES,
  type Installer,
  type SandboxBackendChoice,
  type SandboxMode,
} from "../vocabulary.js";
import type { WantedInputs } from "./check.js";
import type { SharedRuntimeLink } from "./shared-runtime.js";

export interface EnvironmentSpec {
  /** Folder name of the venv under venvRoot (validated by the caller). */
  name: string;
  /** Absolute folder holding all venvs. */
  venvRoot: string;
  /** pip requirement strings, in order (order can change what pip resolves). */
  dependencies: string[];
  /** "3.11", "3.11.7", a path to an interpreter, or a command name; default: python3 on PATH. */
  python?: string;
  indexUrl?: string;
  extraIndexUrls?: string[];
  findLinks?: string[];
  /** auto: uv when on PATH, else venv + pip. */
  installer?: Installer;
  /** The pyisolate runtime's version: part of the fingerprint. */
  runtimeVersion: string;
  onProgress?: (e: ProgressEvent) => void;
  /** Aborting kills a running install and rejects with CallAbortedError. */
  signal?: AbortSignal;
  /** A built shared runtime layer to link after the venv's own packages (its fingerprint joins this one's). */
  sharedRuntime?: SharedRuntimeLink;
  /**
   * Create the venv with `--system-site-packages`, so that the base interpreter's packages are importable after the
   * venv's own. Part of the fingerprint. Unset: the shared runtime layer's choice, else false. false with a layer
   * built with it is a ConfigError (the layer's packages were installed against the base interpreter's).
   */
  systemSitePackages?: boolean;
  /** Environment for uv/pip and the interpreter search (default process.env); its PATH is where uv is looked for. */
  env?: NodeJS.ProcessEnv;
  /** How the dependency install (untrusted sdist build code) is confined; default { mode: "required" }. Not part of the fingerprint. */
  sandbox?: InstallSandboxOptions;
}

/** How a dependency install ran: in bwrap, in bwrap without a user namespace, under Landlock, or unconfined. */
export type InstallSandboxKind = "bwrap" | "bwrap-degraded" | "landlock" | "none";

/**
 * The install sandbox: uv/pip run inside bubblewrap (or, where bwrap cannot run, under Landlock), writing only
 * the venv being built and its package cache.
 */
export interface InstallSandboxOptions {
  /**
   * required (default): no sandbox, no install (SandboxUnavailableError with the remedy);
   * preferred: without a sandbox, warn (a progress event with `warning: true`) and install unconfined;
   * disabled: install unconfined.
   */
  mode: SandboxMode;
  /**
   * Share the host's network with the install (default true). false (what a load with `sandbox.network: false`
   * passes): no network of its own; the configured indexes only, through the host's index proxy, or none at all
   * when every package source is local.
   */
  network?: boolean;
  /**
   * The extension's folder, when the index options came partly from its pyisolate.yaml: a local package source
   * that `trustedIndex` does not name must lie inside it (ConfigError otherwise), and a URL it names reaches
   * only public addresses.
   */
  extensionDir?: string;
  /** The index options the host's own code gave (trusted); without it every index option is the host's. */
  trustedIndex?: { indexUrl: string | null; extraIndexUrls: string[]; findLinks: string[] };
  /**
   * The dependencies the host's own code gave; without it every dependency is the host's. A local one not among
   * them came from the extension's pyisolate.yaml: it is pinned at the real path the file check handed on and must
   * still lie strictly inside `extensionDir`, or under `dependencyRoots` (ConfigError otherwise).
   */
  trustedDependencies?: string[];
  /** Real host paths the file's local dependencies may name (`load({ fileDependencyPaths })`). */
  dependencyRoots?: string[];
  /** The bwrap to use (default: bwrap on PATH). */
  bwrapPath?: string;
  /**
   * Which confinement: `auto` (default) takes bwrap, else Landlock; `bwrap` or `landlock` insists on one (a
   * Landlock install on a host with bwrap is how the tests exercise the Landlock-only path).
   */
  backend?: SandboxBackendChoice;
}

export interface ProgressEvent {
  stage: "resolve-python" | "check" | "lock-wait" | "create-venv" | "install" | "swap" | "done";
  message: string;
  /** One line of uv's or pip's output. */
  line?: string;
  reused?: boolean;
  /** Set on a warning (an install that runs without the sandbox it preferred). */
  warning?: boolean;
  /** Install stage: milliseconds since the install began. */
  elapsedMs?: number;
  /** Install stage: packages and bytes as far as the installer has told them (uv and pip say different things). */
  counts?: InstallCounts;
  /** A periodic event (at least every 2 s while an install runs), not an installer line. */
  tick?: boolean;
}

export interface Environment {
  name: string;
  venvPath: string;
  /**
   * venvPath/bin/python: for tools and the extension's own subprocesses. The host never runs it (install code
   * could have replaced it before the host put its link back); it starts `basePython` and activates the venv.
   */
  pythonPath: string;
  /** The base interpreter the host resolved and recorded when it built the venv (real path): what the guest runs. */
  basePython: string;
  pythonVersion: string;
  /** The installer that built it (a reused venv keeps the one that built it). */
  installer: "uv" | "pip";
  /** @deprecated the old name of `installer` (the same value), kept for one minor version. */
  backend: "uv" | "pip";
  fingerprint: string;
  reused: boolean;
  /** How the dependency install that built it was confined; undefined for a venv built before this was recorded. */
  installSandbox: InstallSandboxKind | undefined;
  /** The shared runtime layer linked after the venv's own packages; undefined for a sealed venv. */
  sharedRuntime?: SharedRuntimeLink;
  /** Whether the venv sees the base interpreter's site-packages (pyvenv.cfg `include-system-site-packages = true`). */
  systemSitePackages: boolean;
}

/** One ensureEnvironment call, with its defaults filled in. */
export interface Job {
  spec: EnvironmentSpec;
  env: NodeJS.ProcessEnv;
  venvPath: string;
  wanted: WantedInputs;
  sandbox: InstallSandboxOptions;
  emit: (e: ProgressEvent) => void;
}

/** Check the spec once, naming the option that is wrong; fill in the defaults. */
export function toJob(spec: EnvironmentSpec): Job {
  validate(spec);
  return {
    spec,
    env: spec.env ?? process.env,
    venvPath: path.join(spec.venvRoot, spec.name),
    wanted: {
      python: spec.python,
      dependencies: spec.dependencies,
      index: {
        indexUrl: spec.indexUrl ?? null,
        extraIndexUrls: spec.extraIndexUrls ?? [],
        findLinks: spec.findLinks ?? [],
      },
      runtimeVersion: spec.runtimeVersion,
      sharedRuntime: spec.sharedRuntime && {
        name: spec.sharedRuntime.name,
        fingerprint: spec.sharedRuntime.fingerprint,
      },
      systemSitePackages: spec.systemSitePackages ?? spec.sharedRuntime?.systemSitePackages ?? false,
    },
    sandbox: { ...spec.sandbox, mode: spec.sandbox?.mode ?? "required" },
    emit: (e) => spec.onProgress?.(e),
  };
}

function validate(spec: EnvironmentSpec): void {
  if (!path.isAbsolute(spec.venvRoot))
    throw new ConfigError(`venvRoot must be an absolute path, got "${spec.venvRoot}"`, { key: "venvRoot" });
  if (!spec.name || spec.name.includes("/") || spec.name.startsWith("."))
    throw new ConfigError(`environment name "${spec.name}" is not a plain folder name`, { key: "name" });
  const bad = spec.dependencies.find((d) => typeof d !== "string" || d.trim() === "" || d.trim().startsWith("-"));
  if (bad !== undefined)
    throw new ConfigError(`dependency ${JSON.stringify(bad)} is not a requirement (options are not allowed here)`, {
      key: "dependencies",
    });
  if (spec.systemSitePackages !== undefined && typeof spec.systemSitePackages !== "boolean")
    throw new ConfigError(`systemSitePackages must be true or false, got ${JSON.stringify(spec.systemSitePackages)}`, {
      key: "systemSitePackages",
    });
  if (spec.systemSitePackages === false && spec.sharedRuntime?.systemSitePackages)
    throw new ConfigError(
      `systemSitePackages is false, but shared runtime "${spec.sharedRuntime.name}" was built with systemSitePackages: ` +
        `its packages were installed against the base interpreter's, so its users must see them too (leave systemSitePackages unset)`,
      { key: "systemSitePackages" },
    );
  if (spec.installer !== undefined && !isOneOf(INSTALLERS, spec.installer))
    throw new ConfigError(`installer must be ${quotedChoices(INSTALLERS)}, got "${spec.installer}"`, {
      key: "installer",
    });
  const sb = spec.sandbox;
  if (sb !== undefined) {
    if (typeof sb !== "object" || sb === null || !isOneOf(SANDBOX_MODES, sb.mode))
      throw new ConfigError(
        `sandbox.mode must be "required", "preferred" or "disabled", got ${JSON.stringify(sb?.mode)}`,
        { key: "sandbox.mode" },
      );
    if (sb.network !== undefined && typeof sb.network !== "boolean")
      throw new ConfigError(`sandbox.network must be a boolean, got ${JSON.stringify(sb.network)}`, {
        key: "sandbox.network",
      });
    if (sb.extensionDir !== undefined && (typeof sb.extensionDir !== "string" || !path.isAbsolute(sb.extensionDir)))
      throw new ConfigError(`sandbox.extensionDir must be an absolute path, got ${JSON.stringify(sb.extensionDir)}`, {
        key: "sandbox.extensionDir",
      });
    if (sb.bwrapPath !== undefined && !path.isAbsolute(sb.bwrapPath))
      throw new ConfigError(`sandbox.bwrapPath must be an absolute path, got "${sb.bwrapPath}"`, {
        key: "sandbox.bwrapPath",
      });
    if (sb.backend !== undefined && !["auto", "bwrap", "landlock"].includes(sb.backend))
      throw new ConfigError(
        `sandbox.backend must be "auto", "bwrap" or "landlock", got ${JSON.stringify(sb.backend)}`,
        { key: "sandbox.backend" },
      );
  }
}

/** What the installer has said so far; a field is absent until the installer says it. */
export interface InstallCounts {
  /** Packages resolved (uv's "Resolved N packages", pip's "Collecting" lines, then its "Installing collected packages"). */
  packages?: number;
  /** Downloads announced with a size, and their sizes added up. */
  downloads?: number;
  bytes?: number;
  /** Packages installed ("Installed N packages", "Successfully installed ..."). */
  installed?: number;
}
