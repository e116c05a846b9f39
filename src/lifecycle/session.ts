// What one guest process (a session) of an extension is to its Extension: the parts it serves with, and its reports.

import type { ExitInfo } from "../errors.js";
import type { GuestProcess } from "../process/guest-process.js";
import type { RpcPeer } from "../rpc/peer.js";
import type { DroppedOutput } from "../output/flood-gate.js";

/** One guest process that finished its handshake. */
export interface GuestSession {
  process: GuestProcess;
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
