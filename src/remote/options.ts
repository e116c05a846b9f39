// The `cluster` option of ExtensionManager (the listener part), as types: where remote guests connect back.

import type { RayClusterOptions } from "../ray/options.js";

/** `new ExtensionManager({ cluster: { listen } })`: the TLS listener guests connect back to. A code option only. */
export interface ListenOptions {
  /** Address to bind (default "127.0.0.1": only this machine). "0.0.0.0" or "::" to take guests from other nodes. */
  host?: string;
  /** Port to bind (default 0: one the kernel picks). */
  port?: number;
  /**
   * The host name or address guests dial (default: `host`, or 127.0.0.1 when `host` is a wildcard): what a
   * remote node can reach this machine by.
   */
  advertise?: string;
  /** How long a connection may take to complete TLS and send its token before it is dropped (default 10 000 ms). */
  authTimeoutMs?: number;
  /** Connections waiting to authenticate at once; past it new ones are closed at once (default 64). */
  maxPendingConnections?: number;
}

/** `new ExtensionManager({ cluster })`. The Ray part (`ray`) is checked with it where present. */
export interface ClusterOptions {
  /** Open the TLS listener (only when given: no listener exists otherwise). */
  listen?: ListenOptions;
  /** The Ray cluster that `load({ placement: { ray } })` places extensions on (src/ray/, docs/cluster.md). */
  ray?: RayClusterOptions;
}

export type ResolvedListen = Required<Omit<ListenOptions, "advertise">> & { advertise: string };
