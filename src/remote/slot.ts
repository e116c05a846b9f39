// The remote-guest interface for the Ray side: a pending slot (the env a remote guest dials back with, its one-time
// token, the wait for its connection) and an Extension served by a guest that runs somewhere else.

import type { TLSSocket } from "node:tls";
import type { Extension } from "../extension.js";
import type { ExtensionManager } from "../manager.js";
import { startRemoteExtension } from "./remote-session.js";
import type { RemoteExtensionOptions } from "./remote-types.js";

export type { RemoteExtensionOptions, RemoteJob } from "./remote-types.js";

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
export async function openRemoteSlot(manager: ExtensionManager, name: string): Promise<RemoteSlot> {
  const pending = (await manager.clusterListener()).expect(name);
  return {
    token: pending.token,
    env: pending.env,
    accept: () => pending.accepted,
    cancel: (reason) => pending.cancel(reason),
  };
}

/**
 * An Extension whose guest runs elsewhere: the same calls, proxy, events, host services, callbacks, errors,
 * cancellation and stop as a local one, over TCP+TLS, with tensors by value (CUDA tensors are refused). The job
 * ending, or the connection dropping, ends the session with ExtensionCrashedError. Registered with the manager like
 * a load (`manager.get(name)`, stopped by `close()`).
 */
export function loadRemote(manager: ExtensionManager, options: RemoteExtensionOptions): Promise<Extension> {
  return startRemoteExtension(manager.remoteContext(), options);
}
