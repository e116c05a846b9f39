// A minimal pluggable logger: the application can pass its own; the default writes warnings and errors to stderr.

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

const LEVELS = ["debug", "info", "warn", "error", "silent"] as const;
export type LogLevel = (typeof LEVELS)[number];

/**
 * What a library should say unasked: warnings (a degraded sandbox, an output flood) and errors, never one line per
 * load. `PYISOLATE_LOG_LEVEL=info` (or debug) shows the rest.
 */
export const DEFAULT_LOG_LEVEL: LogLevel = "warn";

/** A stderr logger (never stdout: it may be the application's data); the level comes from `PYISOLATE_LOG_LEVEL` unless given. */
export function createConsoleLogger(level?: LogLevel): Logger {
  const wanted = level ?? parseLevel(process.env.PYISOLATE_LOG_LEVEL) ?? DEFAULT_LOG_LEVEL;
  const threshold = LEVELS.indexOf(wanted);
  const at = (name: LogLevel) => (message: string) => {
    if (LEVELS.indexOf(name) >= threshold) process.stderr.write(`pyisolate ${name}: ${message}\n`);
  };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

/** Is `value` usable as a Logger (the four methods)? For the `logger` option's check. */
export function isLogger(value: unknown): value is Logger {
  if (typeof value !== "object" || value === null) return false;
  const candidate = value as Record<string, unknown>;
  return ["debug", "info", "warn", "error"].every((method) => typeof candidate[method] === "function");
}

function parseLevel(value: string | undefined): LogLevel | undefined {
  return LEVELS.find((level) => level === value?.toLowerCase());
}
