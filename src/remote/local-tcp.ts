// A local guest on the TCP+TLS transport (`load({ transport: "tcp" })`): what changes in its launch, and the wait
// for its authenticated connection.

import type { TLSSocket } from "node:tls";
import { PROCESS_FILTER_ENV, type LaunchCommand } from "../process/launch.js";
import type { SandboxLaunch } from "../sandbox/prepare.js";
import { TRANSPORT_ENV_NAMES } from "./auth.js";
import type { PendingConnection } from "./listener.js";

/** Why a CUDA tensor cannot go over TCP: its IPC handle opens only on the GPU's own machine. */
export const CUDA_OVER_TCP =
  "CUDA tensors cannot cross the TCP transport (tensors travel by value, and a CUDA IPC handle opens only on its own machine): copy it to the CPU first (.cpu())";
/** Tells the guest to refuse CUDA tensors with the same reason (tensors_torch.py). */
export const CUDA_REFUSE_ENV = "PYISOLATE_CUDA_REFUSE";

/** Pure: the application's env without the dial variables, which only the host sets (a stray one would make it dial). */
export function withoutDialEnv(env: Record<string, string> | undefined): Record<string, string> | undefined {
  if (env === undefined) return undefined;
  return Object.fromEntries(
    Object.entries(env).filter(([name]) => !(TRANSPORT_ENV_NAMES as readonly string[]).includes(name)),
  );
}

/**
 * Pure: the launch of a guest that dials the host's listener. bwrap's empty network namespace has no route to the
 * host's 127.0.0.1, so the guest keeps the host's namespace, and instead of the namespace its own seccomp filter,
 * installed right after it connected, refuses every new socket but socketpair (what the Landlock backend does
 * always): the connection it made is the only one it has. Landlock and no sandbox need no change: the guest connects
 * before it confines itself (python/pyisolate/_guest/tcp_link.py).
 */
export function tcpLaunch(command: LaunchCommand, backend: SandboxLaunch["backend"]): LaunchCommand {
  if (backend !== "bwrap" && backend !== "bwrap-degraded") return command;
  const end = command.args.indexOf("--");
  const bwrapArgs = end < 0 ? command.args : command.args.slice(0, end);
  if (!bwrapArgs.includes("--unshare-net")) return command; // sandbox.network: true, nothing to narrow
  const args = [...bwrapArgs.filter((arg) => arg !== "--unshare-net"), ...(end < 0 ? [] : command.args.slice(end))];
  return { ...command, args, env: { ...command.env, [PROCESS_FILTER_ENV]: "sockets" } };
}

/** The authenticated connection, or the handshake's failure (the guest exited, the start timed out) if that comes first. */
export async function acceptOrFail(pending: PendingConnection, handshake: Promise<unknown>): Promise<TLSSocket> {
  const failed = handshake.then(() => {
    throw new Error("the guest answered before it connected");
  });
  return Promise.race([pending.accepted, failed]);
}
