// The keys Python pyisolate 0.10 and ComfyUI node packs write in pyisolate.yaml, one rule each: mapped to ours or noted.

import { CUDA_IPC_ENV } from "./env-policy.js";
import { INSTALLER_RENAMED, RENAMED_KEYS } from "./renamed.js";

/** What the host's code options say that the mapping of a key depends on. */
export interface UpstreamContext {
  /** Names of the manager's shared runtime layers (`share_torch: true` takes the one named TORCH_LAYER). */
  sharedRuntimes: readonly string[];
  /** The code gave the extension the GPU (`sandbox.gpu`): only then can CUDA tensors cross by IPC. */
  gpu: boolean;
  /** The extension's name as the code gave it. */
  name: string;
}

/** What one upstream key becomes: options in our spelling (checked like our own keys afterwards) and one warning. */
export interface Mapped {
  set?: Record<string, unknown>;
  /** Variables the host sets because of the key (never the file's own values): checked by nobody else, so fixed ones only. */
  hostEnv?: Record<string, string>;
  warn?: string;
}

export interface UpstreamRule {
  /** Our option it maps to, or "" when it changes nothing here (the docs table shows this). */
  ours: string;
  map(value: unknown, ctx: UpstreamContext): Mapped;
}

/** The shared runtime layer that `share_torch: true` asks for: the host application names a layer so. */
export const TORCH_LAYER = "torch";

/** A value of the wrong shape; `key` is the upstream key it came under (set where the rule ran). */
export class UpstreamValueError extends Error {
  key?: string;
}

function bool(key: string, value: unknown): boolean {
  if (typeof value !== "boolean") throw new UpstreamValueError(`${key} must be true or false`);
  return value;
}

function strings(key: string, value: unknown): string[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string"))
    throw new UpstreamValueError(`${key} must be a list of strings`);
  return value as string[];
}

/** A flag whose `true` is what happens here anyway, and whose `false` would ask for less isolation than we give. */
function alwaysOn(key: string, what: string): UpstreamRule {
  return {
    ours: "",
    map: (value) => (bool(key, value) ? {} : { warn: `${key}: false is ignored: ${what}` }),
  };
}

/** A key that means nothing here, whatever its value: accepted, with one warning. */
function noted(key: string, why: string): UpstreamRule {
  return { ours: "", map: () => ({ warn: `${key} is ignored: ${why}` }) };
}

/** Upstream's `sandbox` mapping (SandboxConfig) in our spelling; the sandbox policy then judges it as our own keys. */
function sandboxSection(value: unknown): Mapped {
  if (typeof value === "boolean") {
    return value
      ? {}
      : { warn: "sandbox: false is ignored: an extension's config file never loosens the host's sandbox" };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new UpstreamValueError("sandbox must be true, false or a mapping");
  const out: Record<string, unknown> = {};
  const warnings: string[] = [];
  for (const [key, v] of Object.entries(value)) {
    if (key === "writable_paths") out.writablePaths = strings("sandbox.writable_paths", v);
    else if (key === "readonly_paths") {
      // Upstream also takes {host: inside}; a file names no host paths, so only the list form means anything here.
      out.readonlyPaths = Array.isArray(v) ? strings("sandbox.readonly_paths", v) : [];
      if (!Array.isArray(v))
        warnings.push("sandbox.readonly_paths as a mapping of host paths is ignored (the host's to give)");
    } else if (key === "network") {
      if (bool("sandbox.network", v))
        warnings.push("sandbox.network: true is ignored: only the host application grants the network");
    } else {
      // Our own spelling (mode, writablePaths, ...): judged as such. Defined, not assigned: a "__proto__" key must stay
      // an own key the checks see and refuse, never become the prototype that a `mode` is then inherited from.
      Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
    }
  }
  return { set: { sandbox: out }, warn: warnings.length ? warnings.join("; ") : undefined };
}

/** `-e path` (upstream's editable form) becomes the path: the venv gets a copy, the folder is never written. */
function dependencyList(key: string, value: unknown): Mapped {
  if (value === null) return {}; // `dependencies:` with nothing after it, as upstream's loaders take it
  const list = strings(key, value);
  const editable = list.filter((d) => /^-e\s/.test(d.trim()));
  const deps = list.map((d) => d.trim().replace(/^-e\s+/, ""));
  return {
    set: { dependencies: deps },
    warn: editable.length
      ? `${key}: "-e" is ignored: ${editable.map((d) => d.trim().slice(3).trim()).join(", ")} installs as a copy, not editable`
      : undefined,
  };
}

/** Every key upstream writes that is not already ours, by its upstream spelling. */
export const UPSTREAM_KEYS: Readonly<Record<string, UpstreamRule>> = {
  isolated: alwaysOn("isolated", "every extension runs isolated in its own process and venv here"),
  can_isolate: alwaysOn("can_isolate", "every extension runs isolated in its own process and venv here"),
  can_sandbox: alwaysOn("can_sandbox", "whether an extension is sandboxed is the host application's choice"),
  enabled: alwaysOn("enabled", "which extensions load is the host application's choice"),
  sandbox: { ours: "sandbox", map: sandboxSection },
  sandbox_mode: {
    ours: "sandbox.mode",
    map: (value) =>
      value === "required"
        ? { set: { sandbox: { mode: "required" } } }
        : {
            warn: `sandbox_mode: ${JSON.stringify(value)} is ignored: an extension's config file never loosens the host's sandbox`,
          },
  },
  share_torch: {
    ours: "sharedRuntime",
    map: (value, ctx) => {
      if (!bool("share_torch", value)) return {};
      if (ctx.sharedRuntimes.includes(TORCH_LAYER)) return { set: { sharedRuntime: TORCH_LAYER } };
      return {
        warn: `share_torch: true: the host has no shared runtime layer named "${TORCH_LAYER}", so the extension uses the torch of its own venv`,
      };
    },
  },
  share_cuda_ipc: {
    ours: `env.${CUDA_IPC_ENV}`,
    map: (value, ctx) => {
      if (!bool("share_cuda_ipc", value)) return {};
      if (ctx.gpu) return { hostEnv: { [CUDA_IPC_ENV]: "1" } };
      return {
        warn: "share_cuda_ipc: true is ignored: the host application did not give this extension the GPU (sandbox.gpu)",
      };
    },
  },
  share_torch_no_deps: noted(
    "share_torch_no_deps",
    "a shared runtime layer's packages are never installed again in the venv",
  ),
  dependencies: { ours: "dependencies", map: (value) => dependencyList("dependencies", value) },
  extra_index_urls: {
    ours: "extraIndexUrls",
    map: (value) => ({ set: { extraIndexUrls: strings("extra_index_urls", value) } }),
  },
  find_links: { ours: "findLinks", map: (value) => ({ set: { findLinks: strings("find_links", value) } }) },
  package_manager: {
    ours: "installer",
    map: (value) =>
      value === "uv" || value === "pip"
        ? { set: { installer: value } }
        : {
            warn: `package_manager: ${JSON.stringify(value)} is ignored: venvs are built with uv or pip (conda_dependencies install from the package index)`,
          },
  },
  conda_dependencies: {
    ours: "dependencies",
    map: (value) => ({
      set: { dependencies: strings("conda_dependencies", value) },
      warn: "conda_dependencies install from the package index with uv or pip (a conda name may differ from the one on PyPI)",
    }),
  },
  conda_channels: noted("conda_channels", "there is no conda here"),
  conda_platforms: noted("conda_platforms", "there is no conda here"),
  conda_python: noted("conda_python", 'give python: "3.11" instead'),
  cuda_wheels: {
    ours: "extraIndexUrls",
    map: (value) => {
      if (typeof value !== "object" || value === null || Array.isArray(value))
        throw new UpstreamValueError("cuda_wheels must be a mapping");
      const v = value as Record<string, unknown>;
      const urls = [
        ...(v.index_url === undefined ? [] : strings("cuda_wheels.index_url", [v.index_url])),
        ...(v.index_urls === undefined ? [] : strings("cuda_wheels.index_urls", v.index_urls)),
      ];
      return {
        set: { extraIndexUrls: urls },
        warn: "cuda_wheels: its index URLs are extra indexes for every package (packages and package_map are not applied)",
      };
    },
  },
  execution_model: {
    ours: "",
    map: (value) =>
      value === "sealed_worker"
        ? {}
        : {
            warn: `execution_model: ${JSON.stringify(value)} is ignored: every extension here is a sealed worker (its own venv, not the host's packages)`,
          },
  },
  sealed_host_ro_paths: noted(
    "sealed_host_ro_paths",
    "host paths are the host application's to give (load({ sandbox: { readonlyPaths } }))",
  ),
  apis: {
    ours: "services",
    map: (value) => ({ set: { services: strings("apis", value) } }),
  },
  name: {
    ours: "",
    map: (value, ctx) =>
      value === ctx.name
        ? {}
        : {
            warn: `name: ${JSON.stringify(value)} is ignored: the host application names the extension ("${ctx.name}")`,
          },
  },
  module: noted("module", "the host application gives the module path"),
  module_path: noted("module_path", "the host application gives the module path"),
  version: noted("version", "nothing reads a pack's version here"),
};

/** Our option keys that two spellings in one file may both set; their lists are joined, anything else twice is refused. */
const JOINED = new Set(["dependencies", "extraIndexUrls", "findLinks"]);

export interface Translated {
  options: Record<string, unknown>;
  hostEnv: Record<string, string>;
  warnings: string[];
}

/**
 * Pure: the file's mapping with upstream keys put in our spelling. Our own keys pass as they are; an upstream key
 * whose value has the wrong shape throws UpstreamValueError (the caller names the key and the file).
 */
export function translateUpstream(
  data: Record<string, unknown>,
  ctx: UpstreamContext,
  isOurs: (key: string) => boolean,
): Translated {
  const options: Record<string, unknown> = {};
  const hostEnv: Record<string, string> = {};
  const warnings: string[] = [];
  const setBy = new Map<string, string>();
  const put = (key: string, value: unknown, from: string): void => {
    const earlier = setBy.get(key);
    if (earlier !== undefined && JOINED.has(key))
      options[key] = [...(options[key] as unknown[]), ...(value as unknown[])];
    else if (earlier !== undefined && key === "sandbox")
      options[key] = { ...(options[key] as object), ...(value as object) };
    else if (earlier !== undefined)
      throw Object.assign(new UpstreamValueError(`${from} and ${earlier} both set ${key}; give one`), { key: from });
    else options[key] = value;
    setBy.set(key, from);
  };
  // Our spellings first: a file that mixes both keeps ours, and an upstream key can only join a list.
  for (const [key, value] of Object.entries(data)) {
    if (!isOurs(key) || key === "dependencies" || key === "sandbox") continue;
    // An old name of ours is read as the new one (a clash with it is then told like any other).
    const renamed = Object.hasOwn(RENAMED_KEYS, key) ? RENAMED_KEYS[key]! : undefined;
    if (renamed !== undefined) warnings.push(INSTALLER_RENAMED);
    put(renamed ?? key, value, key);
  }
  for (const [key, value] of Object.entries(data)) {
    if (!Object.hasOwn(UPSTREAM_KEYS, key)) continue;
    const rule = UPSTREAM_KEYS[key]!;
    let mapped: Mapped;
    try {
      mapped = rule.map(value, ctx);
    } catch (error) {
      if (error instanceof UpstreamValueError) throw Object.assign(error, { key });
      throw error;
    }
    for (const [ours, v] of Object.entries(mapped.set ?? {})) put(ours, v, key);
    Object.assign(hostEnv, mapped.hostEnv);
    if (mapped.warn) warnings.push(mapped.warn);
  }
  return { options, hostEnv, warnings };
}
