// Builds one extension's flood gate: drops become `dropped` events on the Extension and one warning line per stream.

import type { EventEmitter } from "node:events";
import type { Logger } from "../logger.js";
import { FloodGate } from "./flood-gate.js";
import type { OutputLimits } from "./output-limits.js";

/**
 * `extension()` is read when a report is due, not when the gate is made: lines can come before the Extension
 * object exists (an import that prints), and their drops are then only counted in the warning.
 */
export function outputGate(limits: OutputLimits, name: string, logger: Logger, extension: () => EventEmitter | undefined): FloodGate {
  return new FloodGate(limits, {
    onFirstDrop: (stream) => logger.warn(
      `[${name}] ${stream} passes its output budget (${limits.linesPerSecond} lines and ${limits.bytesPerSecond} bytes ` +
        `a second, burst ${limits.burst}); the excess is dropped and counted in "dropped" events`,
    ),
    onDropped: (report) => {
      extension()?.emit("dropped", report);
    },
  });
}
