// Typed errors: every failure a user can meet has a stable `name`, a `code` and, where known, a `cause`.

import type { WireError } from "./rpc/protocol.js";
import { boundMessage, headWithLastLines, installerReason } from "./error-text.js";

/** Base class of every error this package throws. Messages lead with the reason and stay under 500 characters. */
export class PyIsolateError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(boundMessage(message), options);
    this.code = code;
  }
  override get name(): string {
    return this.constructor.name;
  }
}

/** An option or config file value is wrong; `key` names it. */
export class ConfigError extends PyIsolateError {
  readonly key: string | undefined;
  readonly file: string | undefined;
  constructor(message: string, options: { key?: string; file?: string; cause?: unknown } = {}) {
    super("ERR_PYISOLATE_CONFIG", message, options);
    this.key = options.key;
    this.file = options.file;
  }
}

/** The Python side raised: the Python type, message and traceback are kept as data. */
export class RemoteError extends PyIsolateError {
  readonly remoteType: string;
  /** The Python exception's whole message (`message` is cut at 500 characters). */
  readonly remoteMessage: string;
  readonly remoteModule: string | undefined;
  readonly remoteTraceback: string;
  constructor(wire: WireError, options?: { cause?: unknown }) {
    super("ERR_PYISOLATE_REMOTE", `${wire.type}: ${wire.message}`, options);
    this.remoteType = wire.type;
    this.remoteMessage = wire.message;
    this.remoteModule = wire.module;
    this.remoteTraceback = wire.traceback ?? "";
    if (this.remoteTraceback) this.stack = `${this.stack}\n--- remote traceback ---\n${this.remoteTraceback}`;
  }
}

/**
 * A call named a method the extension does not offer (as its ready message listed them): refused on the host, before
 * anything is sent. `available` holds the methods it does offer.
 */
export class UnknownMethodError extends PyIsolateError {
  readonly extension: string;
  readonly method: string;
  readonly available: readonly string[];
  constructor(extension: string, method: string, available: readonly string[]) {
    const shown = available.length > 20 ? [...available.slice(0, 20), `... ${available.length - 20} more`] : available;
    const offers = available.length ? `; it offers: ${shown.join(", ")}` : "; it offers no methods";
    super("ERR_PYISOLATE_UNKNOWN_METHOD", `extension "${extension}" has no method "${method.slice(0, 100)}"${offers}`);
    this.extension = extension;
    this.method = method;
    this.available = available;
  }
}

/** What is known about how an extension process ended. */
export interface ExitInfo {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** The last lines the process wrote to stderr. */
  stderrTail: string[];
  /** For a guest on a Ray cluster: its job's status when it ended (FAILED, STOPPED, SUCCEEDED, or RUNNING if lost). */
  rayJobStatus?: string;
}

/** The extension process ended while calls were in flight, or before it was ready. */
export class ExtensionCrashedError extends PyIsolateError {
  readonly extension: string;
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderrTail: string[];
  /** The worker's index when the extension runs as a pool (manager.pool()); undefined for a plain load. */
  readonly worker: number | undefined;
  /** For a guest on a Ray cluster: its job's status when it ended (also in the message's last line). */
  readonly rayJobStatus: string | undefined;
  constructor(extension: string, exit: ExitInfo, options?: { cause?: unknown; worker?: number }) {
    const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.exitCode}`;
    const who = options?.worker === undefined ? "" : ` (worker ${options.worker})`;
    const head = `extension "${extension}"${who} ${how}${exit.stderrTail.length ? "; its last stderr lines:" : ""}`;
    // The last lines that fit (a traceback ends with its reason); all of them are in `stderrTail`.
    super("ERR_PYISOLATE_CRASHED", headWithLastLines(head, exit.stderrTail), options);
    this.extension = extension;
    this.exitCode = exit.exitCode;
    this.signal = exit.signal;
    this.stderrTail = exit.stderrTail;
    this.worker = options?.worker;
    this.rayJobStatus = exit.rayJobStatus;
  }
}

/** The extension could not be imported or initialised (its own error is the `cause`). */
export class ExtensionLoadError extends PyIsolateError {
  readonly extension: string;
  constructor(extension: string, message: string, options?: { cause?: unknown }) {
    super("ERR_PYISOLATE_LOAD", `extension "${extension}" failed to load: ${message}`, options);
    this.extension = extension;
  }
}

/**
 * Creating or updating a virtual environment failed. The message leads with uv's or pip's own reason ("No solution
 * found when resolving dependencies: ..."), then the last lines of its output that fit; `output` holds all of it,
 * `command` the argv that ran (with the sandbox's wrapper, hence not in the message).
 */
export class EnvironmentBuildError extends PyIsolateError {
  readonly output: string;
  readonly command: string[] | undefined;
  constructor(message: string, options: { output?: string; command?: string[]; cause?: unknown } = {}) {
    const lines = options.output?.trim() ? options.output.trim().split("\n") : [];
    const reason = installerReason(lines);
    // With the installer's reason found, that one line is the message; without, the last lines of its output.
    super("ERR_PYISOLATE_ENVIRONMENT", reason ? `${message}: ${reason}` : headWithLastLines(message, lines), options);
    this.output = options.output ?? "";
    this.command = options.command;
  }
}

/** The other side broke the wire protocol (malformed frame, wrong version, oversized message). */
export class ProtocolError extends PyIsolateError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ERR_PYISOLATE_PROTOCOL", message, options);
  }
}

/**
 * A call was aborted by its AbortSignal or timed out; `cause` holds the reason. Its `name` is "AbortError" (or
 * "TimeoutError"), as for fetch and AbortSignal.timeout(), so `error.name === "AbortError"` checks work;
 * `instanceof CallAbortedError` and `code` tell it from others'.
 */
export class CallAbortedError extends PyIsolateError {
  readonly timedOut: boolean;
  constructor(message: string, options: { cause?: unknown; timedOut?: boolean } = {}) {
    super(options.timedOut ? "ERR_PYISOLATE_TIMEOUT" : "ERR_PYISOLATE_ABORTED", message, options);
    this.timedOut = options.timedOut ?? false;
  }
  override get name(): string {
    return this.timedOut ? "TimeoutError" : "AbortError";
  }
}

/** The connection or the extension was closed on purpose while calls were in flight. */
export class ExtensionClosedError extends PyIsolateError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ERR_PYISOLATE_CLOSED", message, options);
  }
}

/** No sandbox the load asked for can run on this host; `model` says why and `remedy` what a person would run. */
export class SandboxUnavailableError extends PyIsolateError {
  readonly extension: string;
  /** The host's restriction model as detected (e.g. "apparmor", "sysctl", "bwrap-missing"). */
  readonly model: string;
  /** Commands or steps, one per line, that would make a sandbox available. */
  readonly remedy: string[];
  constructor(extension: string, reason: string, options: { model: string; remedy: string[]; cause?: unknown }) {
    const remedy = options.remedy.length ? `\nto fix it:\n  ${options.remedy.join("\n  ")}` : "";
    // Short: with the remedy it must fit the 500 characters of a message (the remedy lines are also in `remedy`).
    const optOut = `\nor opt out: sandbox: { mode: "preferred" } (best available) or { mode: "disabled" }`;
    super(
      "ERR_PYISOLATE_SANDBOX",
      `extension "${extension}": no sandbox can run here: ${reason} (model "${options.model}")${remedy}${optOut}`,
      options,
    );
    this.extension = extension;
    this.model = options.model;
    this.remedy = options.remedy;
  }
}

/**
 * The extension passed one of its `limits` and was stopped; its in-flight calls reject with this. `value` is what was
 * measured (or the limit itself, where the kernel stopped it at the limit), `max` the limit, both in the limit's unit.
 */
export class ExtensionLimitError extends PyIsolateError {
  readonly extension: string;
  /** The `limits` key: memoryMiB, cpuSeconds, pids, openFiles or diskMiB. */
  readonly limit: string;
  readonly value: number;
  readonly max: number;
  /** What caught it: "watchdog" (the host's sampling), "rlimit" (the kernel's signal), "cgroup". */
  readonly mechanism: string;
  constructor(
    extension: string,
    details: { limit: string; value: number; max: number; mechanism: string },
    options?: { cause?: unknown },
  ) {
    super(
      "ERR_PYISOLATE_LIMIT",
      `extension "${extension}" passed its limit ${details.limit}: used ${details.value}, at most ${details.max} (caught by the ${details.mechanism}); it was stopped`,
      options,
    );
    this.extension = extension;
    this.limit = details.limit;
    this.value = details.value;
    this.max = details.max;
    this.mechanism = details.mechanism;
  }
}

/**
 * The health check found the extension hung: its heartbeat thread did not answer (the GIL held in C code), or it
 * answered that the event loop had not run for longer than `timeoutMs` (a busy loop in a sync method). The host
 * treats it as a crash: calls in flight reject with this error, the process is killed, the restart policy applies.
 */
export class ExtensionUnresponsiveError extends PyIsolateError {
  readonly extension: string;
  /** `"no-answer"`: the heartbeat went unanswered; `"loop-stalled"`: the guest's event loop did not run. */
  readonly reason: "no-answer" | "loop-stalled";
  /** How long it was unresponsive when it was declared so, in milliseconds. */
  readonly stalledMs: number;
  readonly timeoutMs: number;
  constructor(extension: string, reason: "no-answer" | "loop-stalled", stalledMs: number, timeoutMs: number) {
    const what = reason === "no-answer" ? "its heartbeat went unanswered" : "its event loop did not run";
    super(
      "ERR_PYISOLATE_UNRESPONSIVE",
      `extension "${extension}" is unresponsive: ${what} for ${Math.round(stalledMs)} ms (health.timeoutMs ${timeoutMs})`,
    );
    this.extension = extension;
    this.reason = reason;
    this.stalledMs = stalledMs;
    this.timeoutMs = timeoutMs;
  }
}

/**
 * The Ray cluster could not do what was asked: unreachable, an HTTP error from its Jobs API, a job that could not be
 * placed or started. `status` is the HTTP status when there was one.
 */
export class RayClusterError extends PyIsolateError {
  readonly status: number | undefined;
  constructor(message: string, options: { status?: number; cause?: unknown } = {}) {
    super("ERR_PYISOLATE_RAY", message, options);
    this.status = options.status;
  }
}
