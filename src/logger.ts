// A minimal pluggable logger: the application can pass its own; the default writes to stderr by level.

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

const LEVELS = ["debug", "info", "warn", "error", "silent"] as const;
export type LogLevel = (typeof LEVELS)[number];

/** A stderr logger; the level comes from `PYISOLATE_LOG_LEVEL` unless given. */
export function createConsoleLogger(level?: LogLevel): Logger {
  const wanted = level ?? parseLevel(process.env.PYISOLATE_LOG_LEVEL) ?? "info";
  const threshold = LEVELS.indexOf(wanted);
  const at = (name: LogLevel) => (message: string) => {
    if (LEVELS.indexOf(name) >= threshold) process.stderr.write(`pyisolate ${name}: ${message}\n`);
  };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

function parseLevel(value: string | undefined): LogLevel | undefined {
  return LEVELS.find((level) => level === value?.toLowerCase());
}
