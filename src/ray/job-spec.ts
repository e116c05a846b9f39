// Pure: the Jobs API submission that runs one extension's guest on a Ray node, and the guest's report line read back.

import type { RayJobSubmission } from "./jobs-client.js";
import { DEFAULT_PIP_INSTALL_OPTIONS, type RayPlacement } from "./options.js";

/** Where the extension's folder lies inside the working_dir zip (its package name is the folder's name). */
export function moduleDirInPackage(moduleName: string): string {
  return `ext/${moduleName}`;
}

export interface GuestJobInput {
  name: string;
  /** The uploaded working_dir (gcs://_ray_pkg_<hash>.zip): the runtime under pyisolate/, the extension under ext/. */
  packageUri: string;
  /** The extension folder's name: its Python package. */
  moduleName: string;
  dependencies: readonly string[];
  placement: RayPlacement;
  /** The slot's dial variables (PYISOLATE_CONNECT, PYISOLATE_PEER_SHA256, PYISOLATE_TOKEN) and the application's env. */
  env: Record<string, string>;
  sandboxMode: "required" | "preferred" | "disabled";
  pipInstallOptions: readonly string[] | undefined;
}

/**
 * The submission: `python -I -S -u` on the guest's Ray entry (nothing of the job's venv runs before the guest has
 * confined itself), the working_dir and the dependencies through `runtime_env` (Ray makes one venv per distinct
 * list, so two extensions with conflicting pins live side by side on one node), and the placement as the
 * entrypoint's own resources, so that the process that runs the guest is the one Ray places.
 */
export function guestJobSubmission(input: GuestJobInput): RayJobSubmission {
  const runtimeEnv: Record<string, unknown> = {
    working_dir: input.packageUri,
    env_vars: {
      ...input.env,
      PYISOLATE_SANDBOX_MODE: input.sandboxMode,
      PYISOLATE_MODULE_DIR: moduleDirInPackage(input.moduleName),
    },
  };
  // Without dependencies Ray makes no venv (an empty list is none): the guest runs on the node's own `python`.
  if (input.dependencies.length) {
    runtimeEnv.pip = {
      packages: [...input.dependencies],
      pip_check: false,
      pip_install_options: [...(input.pipInstallOptions ?? DEFAULT_PIP_INSTALL_OPTIONS)],
    };
  }
  const placement = input.placement;
  return {
    entrypoint: "python -I -S -u pyisolate/_guest/ray_entry.py",
    runtime_env: runtimeEnv,
    metadata: { pyisolate_extension: input.name },
    entrypoint_num_cpus: placement.numCpus ?? 0,
    entrypoint_num_gpus: placement.numGpus ?? 0,
    ...(placement.resources && Object.keys(placement.resources).length
      ? { entrypoint_resources: { ...placement.resources } }
      : {}),
  };
}

/** What the guest's Ray entry reports on its first line (python/pyisolate/_guest/ray_entry.py). */
export interface GuestReport {
  pid: number;
  python: string;
  sandbox: { backend: "landlock"; abi: number } | { backend: "none"; reason: string };
  mode: string;
}

export const REPORT_PREFIX = "PYISOLATE_RAY_GUEST ";

/**
 * Pure: the report in a job's logs, or undefined while it has not come. Only a line that starts with the prefix
 * counts, and only the first: the extension's own output follows it and could print a forged one.
 */
export function findGuestReport(logs: string): GuestReport | undefined {
  const line = logs.split("\n").find((l) => l.startsWith(REPORT_PREFIX));
  if (line === undefined) return undefined;
  try {
    const value = JSON.parse(line.slice(REPORT_PREFIX.length)) as Partial<GuestReport>;
    if (typeof value.pid !== "number" || typeof value.sandbox !== "object" || value.sandbox === null) return undefined;
    return value as GuestReport;
  } catch {
    return undefined;
  }
}
