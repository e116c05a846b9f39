// What the soak reads of the host from /proc: its fds, memfds and memory, and the processes below it.

import { readdirSync, readFileSync, readlinkSync } from "node:fs";

export interface Usage {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  fds: number;
  memfds: number;
}

/** The host's own usage now: RSS, heap, open fds and how many of them are memfds (tensor segments). */
export function usage(): Usage {
  const fds = readdirSync("/proc/self/fd");
  let memfds = 0;
  for (const fd of fds) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith("/memfd:")) memfds++;
    } catch {
      // closed while listing
    }
  }
  const memory = process.memoryUsage();
  return {
    rss: memory.rss,
    heapUsed: memory.heapUsed,
    heapTotal: memory.heapTotal,
    external: memory.external,
    arrayBuffers: memory.arrayBuffers,
    fds: fds.length,
    memfds,
  };
}

/** Every process whose ancestry leads to `root` (the extensions, their sandboxes and children). */
export function descendants(root = process.pid): number[] {
  const parent = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      parent.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // gone
    }
  }
  const out: number[] = [];
  for (const pid of parent.keys()) {
    for (let p = parent.get(pid); p !== undefined && p > 1; p = parent.get(p)) {
      if (p === root) {
        out.push(pid);
        break;
      }
    }
  }
  return out;
}

/** "pid state cmdline" of a process, for a report. */
export function describe(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return `${pid} ${state} ${readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").slice(0, 200)}`;
  } catch {
    return `${pid} gone`;
  }
}

/** Is this pid (a zombie counts: nobody reaped it) still a process whose command line names `marker`? */
export function runsMarker(pid: number, marker: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(marker);
  } catch {
    return false;
  }
}
