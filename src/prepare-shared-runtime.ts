// Before an extension's venv: build (or reuse) the shared runtime layer it names, once for all its users.

import { join } from "node:path";
import type { ExtensionOptions, ManagerOptions } from "./config/options.js";
import { ensureEnvironment, type ProgressEvent } from "./env/builder.js";
import { sharedRuntimeLink, type SharedRuntimeLink } from "./env/shared-runtime.js";
import { ConfigError } from "./errors.js";
import type { SandboxMode } from "./sandbox/types.js";
import { RUNTIME_VERSION } from "./version.js";

/** The folder under venvRoot that holds the layers (a dot folder: never an extension's name). */
export const SHARED_FOLDER = ".shared";

export interface SharedRuntimeRequest {
  manager: ManagerOptions;
  /** The extension's merged options: `sharedRuntime` names the layer; progress and abort are the load's. */
  extension: Pick<ExtensionOptions, "name" | "sharedRuntime" | "onProgress" | "signal">;
  /** The extension's sandbox mode: the layer's install (sdist build code) is confined the same way as its own. */
  mode: SandboxMode;
}

/**
 * The layer the extension names, built under `venvRoot/.shared/<name>` by the same builder as every venv
 * (fingerprinted, locked, built aside and swapped in): concurrent loads naming one layer build it once, and an
 * unchanged layer costs a spawn-free check. Undefined for a sealed extension.
 */
export async function prepareSharedRuntime(request: SharedRuntimeRequest): Promise<SharedRuntimeLink | undefined> {
  const { manager, extension } = request;
  const name = extension.sharedRuntime;
  if (name === undefined || name === null) return undefined;
  const runtimes = manager.sharedRuntimes ?? {};
  const spec = Object.hasOwn(runtimes, name) ? runtimes[name] : undefined;
  if (!spec) {
    const known = Object.keys(runtimes);
    throw new ConfigError(
      `extension "${extension.name}" names shared runtime "${name}", which the manager does not offer ` +
        `(sharedRuntimes: ${known.length ? known.map((k) => `"${k}"`).join(", ") : "none"})`,
      { key: "sharedRuntime" },
    );
  }
  const onProgress = extension.onProgress;
  const layer = await ensureEnvironment({
    name,
    venvRoot: join(manager.venvRoot, SHARED_FOLDER),
    dependencies: spec.dependencies,
    python: spec.python,
    indexUrl: spec.indexUrl,
    extraIndexUrls: spec.extraIndexUrls,
    findLinks: spec.findLinks,
    installer: spec.installer ?? manager.installer ?? "auto",
    systemSitePackages: spec.systemSitePackages,
    runtimeVersion: RUNTIME_VERSION,
    onProgress:
      onProgress && ((e: ProgressEvent) => onProgress({ ...e, message: `shared runtime "${name}": ${e.message}` })),
    signal: extension.signal,
    // The layer's packages are the host's choice, but their sdists' build code is not: the install reaches only the
    // layer's configured indexes (through the index proxy; no network at all when they are local), never the
    // host's loopback services, whatever network the extension that triggered the build has.
    sandbox: { mode: request.mode, network: false },
  });
  return sharedRuntimeLink(name, layer);
}
