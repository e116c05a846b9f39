// Environment progress told to the logger: stages and summaries at info, installer lines at debug, a tick every 5 s.

import type { ProgressEvent } from "../env/types.js";
import type { Logger } from "../logger.js";

/** A silent install is told at info this often; the ticks between go to debug. */
const INFO_TICK_MS = 5000;
/** Warnings of one load shown at most (an install's build code can make its proxy refuse requests by the thousand). */
const MAX_WARNINGS = 20;

/** The logger's share of one load's progress (the default logger shows none of it: info and debug are below warn). */
export function progressLogger(name: string, logger: Logger): (event: ProgressEvent) => void {
  let lastInfoTick = 0;
  let warnings = 0;
  return (event) => {
    const text = `[${name}] ${event.message}`;
    if (event.warning) {
      warnings += 1;
      if (warnings <= MAX_WARNINGS) return logger.warn(text);
      return warnings === MAX_WARNINGS + 1
        ? logger.warn(`[${name}] more install warnings; the rest go to debug`)
        : logger.debug(text);
    }
    if (event.line !== undefined) return logger.debug(text);
    if (event.tick) {
      const elapsed = event.elapsedMs ?? 0;
      if (elapsed - lastInfoTick < INFO_TICK_MS) return logger.debug(text);
      lastInfoTick = elapsed;
    }
    logger.info(text);
  };
}

/** The application's `onProgress` first (its exception fails the load, as before), then the logger's. */
export function withProgressLog(
  onProgress: ((event: ProgressEvent) => void) | undefined,
  log: (event: ProgressEvent) => void,
): (event: ProgressEvent) => void {
  return (event) => {
    onProgress?.(event);
    log(event);
  };
}
