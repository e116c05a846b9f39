// The events of an Extension as types: the host's own with their arguments, and the extension's declared ones.

import type { ExitInfo } from "../errors.js";
import type { DroppedOutput } from "../output/flood-gate.js";

export type ExtensionState = "starting" | "ready" | "restarting" | "stopping" | "stopped" | "crashed";

/** Events the host itself emits on every Extension, with their listener arguments. */
export interface HostEventArgs {
  stdout: [line: string];
  stderr: [line: string];
  exit: [exit: ExitInfo];
  stateChange: [state: ExtensionState];
  dropped: [report: DroppedOutput];
  crash: [error: Error];
  restart: [info: { attempt: number; cause: Error | undefined }];
  ready: [];
}

/** Events of an extension that declares none: any name, any payload (the host's own events stay typed). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- `unknown` values would refuse typed payloads
export type UntypedEvents = Record<string, any>;

/**
 * The listener arguments of every event: the host's own, and one payload per extension event of `Events`
 * (`{ progress: { done: number } }` types `ext.on("progress", (p) => p.done)` and refuses `ext.on("progres", ...)`).
 */
export type ExtensionEventMap<Events> = HostEventArgs & {
  [K in Exclude<keyof Events, keyof HostEventArgs>]: [payload: Events[K]];
};
