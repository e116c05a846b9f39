// Where an extension's stdout and stderr lines go besides its events: the host's stderr, the logger, or nowhere.

import type { Logger } from "../logger.js";

export type OutputStream = "stdout" | "stderr";
/** Takes one admitted line of one stream of one extension. */
export type OutputForwarder = (stream: OutputStream, line: string) => void;

/**
 * Never the host's stdout: it is the application's (a CLI's JSON, a pipe into jq). With an application logger, lines
 * go to its `info` prefixed with the name, so they land wherever the application's logs go; without one, to stderr.
 * `enabled: false` (forwardOutput) leaves only the `stdout`/`stderr` events.
 */
export function outputForwarder(
  name: string,
  options: { enabled: boolean; logger: Logger | undefined },
): OutputForwarder | undefined {
  if (!options.enabled) return undefined;
  const logger = options.logger;
  if (logger) return (_stream, line) => logger.info(`[${name}] ${line}`);
  return (_stream, line) => {
    process.stderr.write(`[${name}] ${line}\n`);
  };
}
