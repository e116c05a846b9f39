// What one guest process (a session) of an extension is to its Extension: the parts it serves with, and its reports.

import type { ExitInfo } from "../errors.js";
import type { RpcPeer } from "../rpc/peer.js";
import type { DroppedOutput } from "../output/flood-gate.js";

/**
 * What an Extension needs of the process behind a session: a local GuestProcess, or a remote guest's job
 * (src/remote/remote-process.ts), which has no local pid.
 */
export interface SessionProcess {
  /** The process group the host signals, when it is local. */
  readonly pid: number | undefined;
  /** The extension's own process id (ext.pid), where known. */
  readonly extensionPid: number | undefined;
  /** Where a guest started elsewhere runs (ext.placement): the Ray node, job, address; undefined for a local one. */
  readonly placement?: Readonly<Record<string, unknown>>;
  readonly hasExited: boolean;
  readonly exited: Promise<ExitInfo>;
  /** Ends it now, with everything it started. */
  kill(): void;
  /** Waits `graceMs` for a voluntary exit, then ends it. */
  terminate(graceMs: number): Promise<ExitInfo>;
}

/** One guest process that finished its handshake. */
export interface GuestSession {
  process: SessionProcess;
  peer: RpcPeer;
  /** `streams`: the methods that are generators (the proxy streams them). */
  info: { methods: string[]; extensionClass: string; pythonVersion: string; streams: string[] };
  stopHealth: () => void;
}

/** What a session reports to its Extension. */
export interface SessionHooks {
  stdout(line: string): void;
  stderr(line: string): void;
  event(name: string, payload: unknown): void;
  /** Output or events past the extension's budget were dropped (the flood gate's report). */
  dropped(report: DroppedOutput): void;
  exit(exit: ExitInfo): void;
  /** Found by the host after the start (protocol error, hung guest): the session must end. */
  failure(error: Error): void;
}
