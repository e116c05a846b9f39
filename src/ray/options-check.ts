// Checks of the Ray options (`cluster.ray`, `placement`): pure; a bad value is a ConfigError naming its key.

import { ConfigError } from "../errors.js";
import { checkKnownKeys } from "../config/known-keys.js";
import type { PlacementOptions, RayClusterOptions, RayPlacement } from "./options.js";

const CLUSTER_RAY_FIELDS: Record<keyof RayClusterOptions, true> = {
  address: true,
  pipInstallOptions: true,
  pollMs: true,
  livenessTimeoutMs: true,
  autoscaling: true,
};
const PLACEMENT_FIELDS: Record<keyof PlacementOptions, true> = { ray: true };
const RAY_PLACEMENT_FIELDS: Record<keyof RayPlacement, true> = { numCpus: true, numGpus: true, resources: true };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Pure: `cluster.ray` checked; a bad value is a ConfigError naming the key. */
export function validateRayCluster(ray: unknown): RayClusterOptions | undefined {
  if (ray === undefined) return undefined;
  if (!isObject(ray))
    throw new ConfigError('cluster.ray must be an object such as { address: "http://127.0.0.1:8265" }', {
      key: "cluster.ray",
    });
  checkKnownKeys(ray, Object.keys(CLUSTER_RAY_FIELDS), "cluster.ray.");
  const address = ray.address;
  let url: URL | undefined;
  try {
    url = typeof address === "string" ? new URL(address) : undefined;
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
    throw new ConfigError(
      `cluster.ray.address must be the Ray dashboard's http(s) URL such as "http://127.0.0.1:8265", got ${JSON.stringify(address)}`,
      { key: "cluster.ray.address" },
    );
  }
  const options = ray.pipInstallOptions;
  if (options !== undefined && !(Array.isArray(options) && options.every((o) => typeof o === "string"))) {
    throw new ConfigError("cluster.ray.pipInstallOptions must be a list of strings", {
      key: "cluster.ray.pipInstallOptions",
    });
  }
  if (
    ray.pollMs !== undefined &&
    !(Number.isInteger(ray.pollMs) && (ray.pollMs as number) >= 50 && (ray.pollMs as number) <= 10_000)
  ) {
    throw new ConfigError(`cluster.ray.pollMs must be an integer from 50 to 10000, got ${JSON.stringify(ray.pollMs)}`, {
      key: "cluster.ray.pollMs",
    });
  }
  const liveness = ray.livenessTimeoutMs;
  if (
    liveness !== undefined &&
    !(Number.isInteger(liveness) && (liveness as number) >= 500 && (liveness as number) <= 600_000)
  ) {
    throw new ConfigError(
      `cluster.ray.livenessTimeoutMs must be an integer from 500 to 600000, got ${JSON.stringify(liveness)}`,
      { key: "cluster.ray.livenessTimeoutMs" },
    );
  }
  if (ray.autoscaling !== undefined && typeof ray.autoscaling !== "boolean") {
    throw new ConfigError(`cluster.ray.autoscaling must be true or false, got ${JSON.stringify(ray.autoscaling)}`, {
      key: "cluster.ray.autoscaling",
    });
  }
  return ray as unknown as RayClusterOptions;
}

function checkAmount(value: unknown, key: string): void {
  if (value !== undefined && !(typeof value === "number" && Number.isFinite(value) && value >= 0)) {
    throw new ConfigError(`${key} must be a number of at least 0, got ${JSON.stringify(value)}`, { key });
  }
}

/** Pure: `placement` checked; a bad value is a ConfigError naming the key. */
export function validatePlacement(placement: unknown): PlacementOptions | undefined {
  if (placement === undefined) return undefined;
  if (!isObject(placement))
    throw new ConfigError("placement must be an object such as { ray: { resources: { node_b: 1 } } }", {
      key: "placement",
    });
  checkKnownKeys(placement, Object.keys(PLACEMENT_FIELDS), "placement.");
  const ray = placement.ray;
  if (ray === undefined) return placement as PlacementOptions;
  if (!isObject(ray))
    throw new ConfigError("placement.ray must be an object such as { numCpus: 1, resources: { node_b: 1 } }", {
      key: "placement.ray",
    });
  checkKnownKeys(ray, Object.keys(RAY_PLACEMENT_FIELDS), "placement.ray.");
  checkAmount(ray.numCpus, "placement.ray.numCpus");
  checkAmount(ray.numGpus, "placement.ray.numGpus");
  if (ray.resources !== undefined) {
    if (!isObject(ray.resources))
      throw new ConfigError("placement.ray.resources must map resource names to amounts", {
        key: "placement.ray.resources",
      });
    for (const [name, amount] of Object.entries(ray.resources)) checkAmount(amount, `placement.ray.resources.${name}`);
  }
  return placement as PlacementOptions;
}
