// The remote-guest interface for the Ray side: a pending slot (the env a remote guest dials back with, its one-time
// token, the wait for its connection) and an Extension served by a guest that runs somewhere else.

import type { TLSSocket } from "node:tls";
import type { ExitInfo } from "../errors.js";
import type { Extension } from "../extension.js";
import type { RemoteHost } from "./host.js";
import type { RestartOptions } from "../lifecycle/restart-policy.js";
import type { Logger } from "../logger.js";
import type { ProtocolLimits } from "../rpc/limits.js";
import type { SandboxInfo } from "../sandbox/types.js";
import { startRemoteExtension } from "./remote-session.js";

/**
 * One expected remote connection. Run the guest with `env` (plus what it needs to find the extension:
 * `PYISOLATE_MODULE_PATH`) as `python -m pyisolate._guest.remote`: it dials `PYISOLATE_CONNECT` over TLS, checks the
 * certificate's SHA-256 against `PYISOLATE_PEER_SHA256` before it sends anything, then sends the token.
 */
export interface RemoteSlot {
  /** The one-time token (256 random bits, hex); also `env.PYISOLATE_TOKEN`. */
  readonly token: string;
  /** PYISOLATE_CONNECT (host:port), PYISOLATE_PEER_SHA256 (the pin) and PYISOLATE_TOKEN. */
  readonly env: Record<string, string>;
  /** The authenticated connection; rejects once cancelled or when the manager closes. Bound it with your own timeout. */
  accept(): Promise<TLSSocket>;
  /** Forgets the token: a later connection with it is refused. */
  cancel(reason?: Error): void;
}

/** Opens the manager's listener if needed (cluster.listen, else 127.0.0.1) and files a one-time token for `name`. */
export async function openRemoteSlot(manager: RemoteHost, name: string): Promise<RemoteSlot> {
  const pending = (await manager.clusterListener()).expect(name);
  return { token: pending.token, env: pending.env, accept: () => pending.accepted, cancel: (reason) => pending.cancel(reason) };
}

/** A guest started elsewhere (a Ray job or actor) for one session of a remote extension. */
export interface RemoteJob {
  /** Where it runs (`ext.placement`): the Ray node id, address, ... as the launcher knows it. */
  placement?: Record<string, unknown>;
  /** The remote process id, if known (`ext.pid`). */
  pid?: number;
  /** Settles when the job has ended; put the Ray job status in `stderrTail` (it lands in ExtensionCrashedError). */
  exited: Promise<ExitInfo>;
  /** Stops the job (Ray's stop); `exited` must settle afterwards. Called on stop(), close() and failures. */
  kill(): void;
}

export interface RemoteExtensionOptions {
  name: string;
  /** The extension's folder as the guest finds it on the node (sent in init; the guest's PYISOLATE_MODULE_PATH wins). */
  modulePath: string;
  extensionClass?: string;
  /**
   * Starts one guest with `env` (the slot's dial variables; add your own) and returns its job. Called at the first
   * start and at each restart (each with a fresh token). `signal` aborts when the start is given up.
   */
  launch(env: Record<string, string>, signal: AbortSignal): Promise<RemoteJob>;
  /** What confines the guest on its node, as it reported (default: backend "none"). */
  sandbox?: SandboxInfo;
  /** Host services it may call (default: every provided one). */
  services?: string[];
  callTimeoutMs?: number;
  /** The connection and the handshake together (default 120 000 ms). */
  startTimeoutMs?: number;
  restart?: RestartOptions;
  protocolLimits?: Partial<ProtocolLimits>;
  logger?: Logger;
}

/**
 * An Extension whose guest runs elsewhere: the same calls, proxy, events, host services, callbacks, errors,
 * cancellation and stop as a local one, over TCP+TLS, with tensors by value (CUDA tensors are refused). The job
 * ending, or the connection dropping, ends the session with ExtensionCrashedError. Registered with the manager like
 * a load (`manager.get(name)`, stopped by `close()`).
 */
export function loadRemote(manager: RemoteHost, options: RemoteExtensionOptions): Promise<Extension> {
  return startRemoteExtension(manager, options);
}
