// The types of a remote guest's launch: what the Ray side gives loadRemote() and gets back from it.

import type { ExitInfo } from "../errors.js";
import type { RestartOptions } from "../lifecycle/restart-policy.js";
import type { Logger } from "../logger.js";
import type { ProtocolLimits } from "../rpc/limits.js";
import type { SandboxInfo } from "../sandbox/types.js";

/** A guest started elsewhere (a Ray job or actor) for one session of a remote extension. */
export interface RemoteJob {
  /** Where it runs: the Ray node id, address, ... as the launcher knows it. */
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
  /** Its index in a pool (manager.pool()): its ExtensionCrashedError names it. */
  worker?: number;
  /**
   * Starts one guest with `env` (the slot's dial variables; add your own) and returns its job. Called at the first
   * start and at each restart (each with a fresh token). `signal` aborts when the start is given up.
   */
  launch(env: Record<string, string>, signal: AbortSignal): Promise<RemoteJob>;
  /** What confines the guest on its node, as it reported (default: backend "none"). */
  sandbox?: SandboxInfo;
  callTimeoutMs?: number;
  /** The connection and the handshake together (default 120 000 ms). */
  startTimeoutMs?: number;
  restart?: RestartOptions;
  /**
   * A liveness check over a second authenticated connection: the guest's heartbeat thread must answer a ping every
   * `intervalMs` within `timeoutMs`, or its job is stopped and its calls fail with ExtensionCrashedError (a frozen or
   * cut-off node keeps its sockets open, so the connection alone never tells). Absent: no check.
   */
  liveness?: { intervalMs: number; timeoutMs: number };
  protocolLimits?: Partial<ProtocolLimits>;
  logger?: Logger;
}
