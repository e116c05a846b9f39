// Owns one extension OS process: spawn, its output lines, its exit, and killing it for good.
//
// SIGTERM is the kill: the guest's supervisor (Landlock, no sandbox) turns it into SIGKILL for every process the
// extension started, daemons included, and bwrap's death takes its PID namespace along. SIGKILL to the group is only
// the last resort, after `killAfterMs`: it would kill the supervisor before it could sweep.

import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import type { Socket } from "node:net";
import type { Readable } from "node:stream";
import type { ExitInfo } from "../errors.js";
import type { LaunchCommand } from "./launch.js";
import { LineSplitter } from "./lines.js";
import type { FloodGate } from "../output/flood-gate.js";

const STDERR_TAIL_LINES = 20;
/** How long a SIGTERMed guest has to be gone (its supervisor's sweep takes milliseconds) before SIGKILL. */
const KILL_AFTER_MS = 2000;

export interface GuestProcessHooks {
  onStdout(line: string): void;
  onStderr(line: string): void;
  onExit(exit: ExitInfo): void;
}

export class GuestProcess {
  readonly child: ChildProcess;
  /** The RPC socket: the child's file descriptor 3 (absent when the guest dials the host over TCP instead). */
  readonly channel: Socket | undefined;
  /** The health heartbeat socket: the child's fd 5, when asked for (lifecycle/health.ts). */
  readonly heartbeat: Socket | undefined;
  readonly exited: Promise<ExitInfo>;
  private readonly stderrTail: string[] = [];
  private exitInfo: ExitInfo | undefined;
  private pythonPid: number | undefined;

  /**
   * `fdChannel`, when given, becomes the child's fd 4 (the socket that carries tensor segments); the caller
   * closes its copy after the spawn. `heartbeat` makes fd 5 a socket for the health check. `channel: false` leaves
   * fd 3 closed: the guest connects over TCP (src/remote/).
   */
  constructor(
    command: LaunchCommand,
    hooks: GuestProcessHooks,
    options: {
      fdChannel?: number;
      maxLineChars?: number;
      heartbeat?: boolean;
      gate?: FloodGate;
      channel?: boolean;
    } = {},
  ) {
    this.child = spawn(command.command, command.args, {
      cwd: command.cwd,
      env: command.env,
      // fd 3 is a Unix socket pair end in the child: our RPC channel, no path on disk to find or guard. fd 4 carries
      // tensor descriptors, fd 5 the heartbeat; from fd 6 on, the sandbox's pinned paths (bwrap binds them, the
      // Landlock guest rules them).
      stdio: [
        "ignore",
        "pipe",
        "pipe",
        options.channel === false ? "ignore" : "pipe",
        options.fdChannel ?? "ignore",
        options.heartbeat ? "pipe" : "ignore",
        ...(command.fds ?? []),
      ],
      // Its own process group, so that stop can signal everything the extension started.
      detached: true,
    });
    this.channel = options.channel === false ? undefined : (this.child.stdio[3] as Socket);
    this.heartbeat = options.heartbeat ? ((this.child.stdio as unknown[])[5] as Socket) : undefined;
    const stdout = new LineSplitter(hooks.onStdout, options.maxLineChars);
    const stderr = new LineSplitter((line) => {
      this.stderrTail.push(line);
      if (this.stderrTail.length > STDERR_TAIL_LINES) this.stderrTail.shift();
      hooks.onStderr(line);
    }, options.maxLineChars);
    // A stream past its budget has whole chunks counted and dropped unread: a flood costs a newline scan.
    const gate = options.gate;
    // While it floods, a pipe is read one chunk per turn of the event loop (libuv would read up to 32 in a row).
    const read = (name: "stdout" | "stderr", splitter: LineSplitter, pipe: Readable) => (chunk: Buffer) => {
      if (gate === undefined || !gate.exhausted(name)) return splitter.push(chunk);
      gate.drop(name, splitter.discard(chunk), chunk.length);
      pipe.pause();
      setImmediate(() => pipe.resume());
    };
    this.child.stdout!.on("data", read("stdout", stdout, this.child.stdout!));
    this.child.stderr!.on("data", read("stderr", stderr, this.child.stderr!));
    this.exited = new Promise<ExitInfo>((resolve) => {
      const finish = (exitCode: number | null, signal: NodeJS.Signals | null) => {
        if (this.exitInfo) return;
        stdout.flush();
        stderr.flush();
        this.exitInfo = { exitCode, signal, stderrTail: [...this.stderrTail] };
        hooks.onExit(this.exitInfo);
        resolve(this.exitInfo);
      };
      // "close" waits for stdio to drain, so the stderr tail is complete.
      this.child.once("close", finish);
      this.child.once("error", (error) => {
        this.stderrTail.push(`spawn failed: ${error.message}`);
        finish(null, null);
      });
    });
  }

  /** The process the host spawned: the group leader (the guest's supervisor, or bwrap), what signals go to. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The extension's Python process where it is known (see `adoptPythonPid`), else `pid`. */
  get extensionPid(): number | undefined {
    return this.pythonPid ?? this.child.pid;
  }

  /**
   * Takes the pid the guest reports in its hello as the extension's own, but only if that process is a child of the
   * one we spawned (the supervisor): the report is the extension's word, and `ext.pid` is what users signal.
   */
  adoptPythonPid(reported: unknown): void {
    if (
      typeof reported !== "number" ||
      !Number.isSafeInteger(reported) ||
      reported <= 0 ||
      this.child.pid === undefined
    )
      return;
    try {
      const stat = readFileSync(`/proc/${reported}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === this.child.pid) this.pythonPid = reported;
    } catch {
      // Gone already, or no /proc: `pid` stands.
    }
  }

  get hasExited(): boolean {
    return this.exitInfo !== undefined;
  }

  /** Sends a signal to the whole process group; harmless when it is already gone. */
  signal(signal: NodeJS.Signals): void {
    if (this.exitInfo || this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      try {
        this.child.kill(signal);
      } catch {
        // Already gone.
      }
    }
  }

  /** Waits `graceMs` for a voluntary exit, then SIGTERM, then SIGKILL after `killAfterMs`. */
  async terminate(graceMs: number, killAfterMs = KILL_AFTER_MS): Promise<ExitInfo> {
    if (await this.exitedWithin(graceMs)) return this.exited;
    this.signal("SIGTERM");
    if (await this.exitedWithin(killAfterMs)) return this.exited;
    this.signal("SIGKILL");
    return this.exited;
  }

  /** Ends it now, with everything it started: SIGTERM (see the top of this file), SIGKILL if it is still there. */
  kill(killAfterMs = KILL_AFTER_MS): void {
    void this.terminate(0, killAfterMs);
  }

  private async exitedWithin(ms: number): Promise<boolean> {
    if (this.exitInfo) return true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(resolve, ms, false)));
    const done = await Promise.race([this.exited.then(() => true as const), timeout]);
    clearTimeout(timer);
    return done;
  }
}
