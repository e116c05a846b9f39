// The SessionProcess of a remote session (remote-session.ts): the Ray job and its connection behind one interface.

import type { TLSSocket } from "node:tls";
import type { ExitInfo } from "../errors.js";
import type { SessionProcess } from "../lifecycle/session.js";
import type { RemoteJob } from "./remote-types.js";

/**
 * A remote job as an Extension sees a process: no local pid; killing it stops the job and drops the connection; a
 * guest given up by the liveness check says so in how it ended.
 */
export class RemoteProcess implements SessionProcess {
  readonly pid = undefined;
  hasExited = false;
  readonly exited: Promise<ExitInfo>;
  /** Why the host gave the guest up (its liveness check), added to how it ended. */
  private lost: string | undefined;
  constructor(
    private readonly job: RemoteJob,
    private readonly socket: TLSSocket,
  ) {
    this.exited = job.exited.then((exit) => {
      this.hasExited = true;
      return this.lost
        ? { ...exit, stderrTail: [...exit.stderrTail.slice(0, -1), this.lost, ...exit.stderrTail.slice(-1)] }
        : exit;
    });
  }
  get extensionPid(): number | undefined {
    return this.job.pid;
  }
  get placement(): Readonly<Record<string, unknown>> | undefined {
    return this.job.placement;
  }
  /** The guest stopped answering: stop its job, and say so in how it ended. */
  lose(reason: string): void {
    this.lost ??= reason;
    this.kill();
  }
  kill(): void {
    this.socket.destroy();
    this.job.kill();
  }
  async terminate(graceMs: number): Promise<ExitInfo> {
    const timer = setTimeout(() => this.kill(), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
