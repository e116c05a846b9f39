// Builds one extension's flood gate: drops become `dropped` events on the Extension and one warning line per stream.

import type { Logger } from "../logger.js";
import { FloodGate, type DroppedOutput } from "./flood-gate.js";
import type { OutputLimits } from "./output-limits.js";

/** `onDropped` hands each report to the Extension, which emits it as its `dropped` event. */
export function outputGate(
  limits: OutputLimits,
  name: string,
  logger: Logger,
  onDropped: (report: DroppedOutput) => void,
): FloodGate {
  return new FloodGate(limits, {
    onFirstDrop: (stream) =>
      logger.warn(
        `[${name}] ${stream} passes its output budget (${limits.linesPerSecond} lines and ${limits.bytesPerSecond} bytes ` +
          `a second, burst ${limits.burst}); the excess is dropped and counted in "dropped" events`,
      ),
    onDropped,
  });
}
