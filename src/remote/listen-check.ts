// Checks the `cluster` option: a bad value is a ConfigError naming its key.

import { ConfigError } from "../errors.js";
import { checkKnownKeys } from "../config/known-keys.js";
import type { ClusterOptions, ListenOptions, ResolvedListen } from "./options.js";
import { validateRayCluster } from "../ray/options-check.js";

export const LISTEN_DEFAULTS = Object.freeze({
  host: "127.0.0.1",
  port: 0,
  authTimeoutMs: 10_000,
  maxPendingConnections: 64,
});

/** The keys of `cluster` (the ray helper's part joins them). */
const CLUSTER_FIELDS: Record<keyof ClusterOptions, true> = { listen: true, ray: true };
const LISTEN_FIELDS: Record<keyof ListenOptions, true> = {
  host: true,
  port: true,
  advertise: true,
  authTimeoutMs: true,
  maxPendingConnections: true,
};

/** Pure: `cluster.listen` checked and with its defaults; a bad value is a ConfigError naming the key. */
export function resolveListen(listen: ListenOptions | undefined): ResolvedListen {
  const options = listen ?? {};
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new ConfigError('cluster.listen must be an object such as { host: "127.0.0.1", port: 0 }', {
      key: "cluster.listen",
    });
  }
  checkKnownKeys(options as Record<string, unknown>, Object.keys(LISTEN_FIELDS), "cluster.listen.");
  const host = options.host ?? LISTEN_DEFAULTS.host;
  if (typeof host !== "string" || host === "")
    throw new ConfigError("cluster.listen.host must be a non-empty string", { key: "cluster.listen.host" });
  const port = options.port ?? LISTEN_DEFAULTS.port;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(`cluster.listen.port must be an integer from 0 to 65535, got ${JSON.stringify(port)}`, {
      key: "cluster.listen.port",
    });
  }
  const wildcard = host === "0.0.0.0" || host === "::";
  const advertise = options.advertise ?? (wildcard ? "127.0.0.1" : host);
  if (typeof advertise !== "string" || advertise === "" || /[\s,]/.test(advertise)) {
    throw new ConfigError("cluster.listen.advertise must be a host name or address", {
      key: "cluster.listen.advertise",
    });
  }
  const authTimeoutMs = options.authTimeoutMs ?? LISTEN_DEFAULTS.authTimeoutMs;
  const maxPendingConnections = options.maxPendingConnections ?? LISTEN_DEFAULTS.maxPendingConnections;
  for (const [key, value] of [
    ["authTimeoutMs", authTimeoutMs],
    ["maxPendingConnections", maxPendingConnections],
  ] as const) {
    if (!Number.isInteger(value) || value <= 0) {
      throw new ConfigError(`cluster.listen.${key} must be a positive integer, got ${JSON.stringify(value)}`, {
        key: `cluster.listen.${key}`,
      });
    }
  }
  return { host, port, advertise, authTimeoutMs, maxPendingConnections };
}

/** Pure: the `cluster` option checked (undefined stays undefined); its `listen` is resolved when the listener opens. */
export function validateCluster(cluster: unknown): ClusterOptions | undefined {
  if (cluster === undefined) return undefined;
  if (typeof cluster !== "object" || cluster === null || Array.isArray(cluster)) {
    throw new ConfigError('cluster must be an object such as { listen: { host: "127.0.0.1", port: 0 } }', {
      key: "cluster",
    });
  }
  checkKnownKeys(cluster, Object.keys(CLUSTER_FIELDS), "cluster.");
  const options = cluster as ClusterOptions;
  if (options.listen !== undefined) resolveListen(options.listen);
  validateRayCluster(options.ray);
  return options;
}

/** "host:port" as a guest dials it (an IPv6 address in brackets). */
export function connectAddress(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
