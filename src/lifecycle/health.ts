// The host side of the health heartbeat: pings the guest's heartbeat thread (fd 5) and declares it hung when it
// goes unanswered or reports that the extension's event loop has not run, for longer than timeoutMs.
//
// Wire (docs/protocol.md, Health): the host writes one byte per ping; the guest thread answers each with 4 bytes,
// big-endian, the milliseconds its event loop has left a wake-up pending (0: the loop is running). The thread alone
// catches the GIL held in C (it cannot answer); the loop age alone catches a busy Python loop (the thread still gets
// the GIL every 5 ms and answers, but the loop never runs the wake-up).

import type { Socket } from "node:net";
import { ExtensionUnresponsiveError, ProtocolError } from "../errors.js";

/** The heartbeat socket's descriptor number in the guest (src/sandbox/pin.ts starts the pins after it). */
export const HEARTBEAT_FD = 5;
const ANSWER_BYTES = 4;

/**
 * `load({ health })`: off by default (a sync method that computes for minutes, as ComfyUI nodes do, would count as a
 * stalled event loop); `true` takes the defaults.
 */
export interface HealthOptions {
  /** How often the host pings (default 1 000 ms). */
  intervalMs?: number;
  /** How long the guest may stay unanswering or with its event loop stalled before it counts as hung (default 30 000 ms). */
  timeoutMs?: number;
}

export type HealthPolicy = Required<HealthOptions>;

export const HEALTH_DEFAULTS: HealthPolicy = Object.freeze({ intervalMs: 1_000, timeoutMs: 30_000 });

/** Pure: the health policy for `load({ health })`, or undefined when it is off (the default). */
export function resolveHealthPolicy(options: HealthOptions | boolean | undefined): HealthPolicy | undefined {
  if (options === false || options === undefined) return undefined;
  if (options === true) return { ...HEALTH_DEFAULTS };
  const defined = Object.fromEntries(Object.entries(options ?? {}).filter(([, v]) => v !== undefined));
  return { ...HEALTH_DEFAULTS, ...defined };
}

/** Pings one guest until stopped; calls `onFailure` once, with ExtensionUnresponsiveError or a ProtocolError. */
export class HealthMonitor {
  private readonly timer: NodeJS.Timeout;
  /** When the unanswered ping was sent, if one is out. */
  private pendingSince: number | undefined;
  private pings = 0;
  private answers = 0;
  private buffered = Buffer.alloc(0);
  private done = false;

  constructor(
    private readonly socket: Socket,
    private readonly name: string,
    private readonly policy: HealthPolicy,
    private readonly onFailure: (error: Error) => void,
    /** false: only an unanswered ping counts (a liveness check: a long sync method stalls the loop, not the node). */
    private readonly watchLoop = true,
  ) {
    socket.on("data", (chunk: Buffer) => this.receive(chunk));
    // The socket ends with the process; the exit handler reports that, not the heartbeat.
    socket.on("error", () => {});
    this.timer = setInterval(() => this.tick(), policy.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.done = true;
    clearInterval(this.timer);
    this.socket.destroy();
  }

  private tick(): void {
    const now = performance.now();
    if (this.pendingSince !== undefined) {
      const since = this.pendingSince;
      // The verdict after this turn's I/O: a host loop that was blocked runs its timers before it reads the answer
      // that came meanwhile, and would take its own stall for the guest's.
      if (now - since > this.policy.timeoutMs)
        setImmediate(() => {
          if (this.pendingSince !== since) return;
          const waited = performance.now() - since;
          this.fail(new ExtensionUnresponsiveError(this.name, "no-answer", waited, this.policy.timeoutMs));
        });
      return;
    }
    this.pendingSince = now;
    this.pings += 1;
    this.socket.write(Buffer.of(1));
  }

  private receive(chunk: Buffer): void {
    if (this.done) return;
    this.buffered = Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= ANSWER_BYTES) {
      const loopAgeMs = this.buffered.readUInt32BE(0);
      this.buffered = this.buffered.subarray(ANSWER_BYTES);
      this.answers += 1;
      // More answers than pings is a guest writing on its own: the socket is not a channel for it.
      if (this.answers > this.pings)
        return this.fail(new ProtocolError(`extension "${this.name}" wrote unasked on its heartbeat socket`));
      this.pendingSince = undefined;
      if (this.watchLoop && loopAgeMs > this.policy.timeoutMs) {
        return this.fail(new ExtensionUnresponsiveError(this.name, "loop-stalled", loopAgeMs, this.policy.timeoutMs));
      }
    }
  }

  private fail(error: Error): void {
    if (this.done) return;
    this.stop();
    this.onFailure(error);
  }
}
