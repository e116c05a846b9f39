// Run one uv/pip/python command from an argv array: stream its lines, keep a tail, kill its group on abort.

import { spawn } from "node:child_process";
import { CallAbortedError, EnvironmentBuildError } from "../errors.js";
import { onHostExit } from "../host-exit.js";

/** How many output lines an error keeps. */
export const TAIL_LINES = 40;
const KILL_GRACE_MS = 2000;

export interface RunOptions {
  env: NodeJS.ProcessEnv;
  cwd?: string;
  signal?: AbortSignal;
  /** Called with each line the command writes to stdout or stderr. */
  onLine?: (line: string) => void;
  /** Kill the command after this many milliseconds (a timeout is one more abort reason). */
  timeoutMs?: number;
  /**
   * Run in its own process group, killed as a whole on abort and when this process exits: uv and pip start
   * children of their own (builds, pip's re-exec for --python) that must not outlive an aborted install.
   */
  group?: boolean;
  /** Descriptors the command inherits from fd 5 on (the install sandbox's pinned paths). */
  fds?: readonly number[];
}

export interface RunResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** The last TAIL_LINES lines of stdout and stderr, interleaved as they came. */
  tail: string[];
  stdout: string;
}

/** Quote an argv for display in an error message (never for a shell: nothing here runs one). */
export function formatCommand(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)).join(" ");
}

/** Spawn `argv` without a shell and wait for it (and whatever holds its output open) to end. Rejects only on abort or spawn failure. */
export function runCommand(argv: readonly string[], options: RunOptions): Promise<RunResult> {
  const [file, ...args] = argv;
  if (!file) throw new TypeError("runCommand: empty argv");
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(abortError(argv, signal.reason));
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env,
      stdio: options.fds?.length
        ? ["ignore", "pipe", "pipe", "ignore", "ignore", "ignore", ...options.fds]
        : ["ignore", "pipe", "pipe"],
      detached: options.group ?? false,
    });
    const tail: string[] = [];
    let stdout = "";
    let killTimer: NodeJS.Timeout | undefined;
    let abortReason: unknown;
    let aborted = false;

    const pushLine = (line: string): void => {
      if (!line.trim()) return;
      tail.push(line);
      if (tail.length > TAIL_LINES) tail.shift();
      options.onLine?.(line);
    };
    const lineReader = (keepStdout: boolean) => {
      let partial = "";
      return (chunk: Buffer): void => {
        const text = chunk.toString("utf8");
        if (keepStdout) stdout += text;
        const parts = (partial + text).split(/\r\n|\r|\n/);
        partial = parts.pop() ?? "";
        for (const p of parts) pushLine(p);
      };
    };
    const onOut = lineReader(true);
    const onErr = lineReader(false);
    child.stdout!.on("data", onOut);
    child.stderr!.on("data", onErr);

    const killGroup = (sig: NodeJS.Signals): void => {
      if (child.pid === undefined) return;
      try {
        if (!options.group) throw new Error("no group");
        process.kill(-child.pid, sig);
      } catch {
        child.kill(sig);
      }
    };
    // SIGTERM, not SIGKILL: there is no later moment to escalate, and SIGKILL would kill the Landlock launcher's
    // supervisor before it kills what the build left behind (a setsid daemon). bwrap dies on SIGTERM and its PID
    // namespace takes every process with it; an unconfined install is the host's own code.
    const killOnHostExit = (): void => killGroup("SIGTERM");
    const forgetHostExit = options.group ? onHostExit(killOnHostExit) : undefined;
    const abort = (reason: unknown): void => {
      if (aborted) return;
      aborted = true;
      abortReason = reason;
      killGroup("SIGTERM");
      killTimer = setTimeout(() => killGroup("SIGKILL"), KILL_GRACE_MS);
      killTimer.unref();
    };
    const onAbort = (): void => abort(signal?.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    const timeout = options.timeoutMs
      ? setTimeout(() => abort(new Error(`timed out after ${options.timeoutMs} ms`)), options.timeoutMs)
      : undefined;

    const finish = (): void => {
      signal?.removeEventListener("abort", onAbort);
      forgetHostExit?.();
      if (timeout) clearTimeout(timeout);
      if (killTimer) clearTimeout(killTimer);
    };
    child.on("error", (err) => {
      finish();
      const e = err as NodeJS.ErrnoException;
      reject(new EnvironmentBuildError(`could not run ${formatCommand(argv)}: ${e.code ?? e.message}`, { cause: err }));
    });
    child.on("close", (exitCode, sig) => {
      finish();
      if (aborted) {
        reject(abortError(argv, abortReason, options.timeoutMs !== undefined && !signal?.aborted));
        return;
      }
      resolve({ exitCode, signal: sig, tail, stdout });
    });
  });
}

function abortError(argv: readonly string[], reason: unknown, timedOut = false): CallAbortedError {
  return new CallAbortedError(`${timedOut ? "timed out" : "aborted"}: ${formatCommand(argv)}`, {
    cause: reason,
    timedOut,
  });
}

/** Run and throw an EnvironmentBuildError carrying the command and its own last lines when it fails. */
export async function runChecked(what: string, argv: readonly string[], options: RunOptions): Promise<RunResult> {
  const result = await runCommand(argv, { group: true, ...options });
  if (result.exitCode !== 0) {
    const how = result.signal ? `was killed by ${result.signal}` : `exited with code ${result.exitCode}`;
    // The command (with a sandbox's wrapper, kilobytes long) is a field: the message leads with the reason.
    throw new EnvironmentBuildError(`${what} failed (${how})`, {
      output: result.tail.join("\n"),
      command: [...argv],
    });
  }
  return result;
}
