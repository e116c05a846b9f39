// Reads one process tree from /proc: who is below a root pid, and what each member holds (memory, CPU, descriptors).

import { readdirSync, readFileSync } from "node:fs";

/** Linux reports CPU times in clock ticks of USER_HZ, which is 100 on every architecture it supports. */
const TICKS_PER_SECOND = 100;

/** What the tree below (and including) a root holds at one moment. */
export interface TreeSample {
  /** Live processes of the tree, the root included. */
  processes: number;
  /** Sum of VmRSS, bytes. */
  rssBytes: number;
  /** User and system time of live members and of the children they reaped, seconds. */
  cpuSeconds: number;
  /** Open descriptors of every member whose /proc/<pid>/fd the host may list. */
  openFiles: number;
}

/** Pure: a /proc/<pid>/stat line's fields after the command name (which may hold spaces and parentheses). */
export function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(")") + 2).trim().split(/\s+/);
}

/** Pure: the parent pid and the CPU ticks (utime + stime + cutime + cstime) from a stat line. */
export function parseStat(stat: string): { ppid: number; ticks: number } {
  const f = statFields(stat);
  // After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
  return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) };
}

/** Pure: every pid below `root` in a pid -> parent map, parents before children. */
export function treeBelow(root: number, parents: ReadonlyMap<number, number>): number[] {
  const children = new Map<number, number[]>();
  for (const [pid, ppid] of parents) {
    const list = children.get(ppid);
    if (list) list.push(pid);
    else children.set(ppid, [pid]);
  }
  const out: number[] = [];
  const todo = [...(children.get(root) ?? [])];
  while (todo.length) {
    const pid = todo.shift()!;
    out.push(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return out;
}

function readOrUndefined(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return undefined; // the process ended meanwhile
  }
}

/** Pure: VmRSS in bytes from a /proc/<pid>/status text (0 for a zombie, which has none). */
export function rssFromStatus(status: string): number {
  const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return kb ? Number(kb[1]) * 1024 : 0;
}

/** Samples the tree of `root` (it included); undefined when `root` is gone. Reads only /proc, follows nothing. */
export function sampleTree(root: number): TreeSample | undefined {
  const parents = new Map<number, number>();
  const ticks = new Map<number, number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readOrUndefined(`/proc/${name}/stat`);
    if (stat === undefined) continue;
    const parsed = parseStat(stat);
    parents.set(Number(name), parsed.ppid);
    ticks.set(Number(name), parsed.ticks);
  }
  if (!parents.has(root)) return undefined;
  const members = [root, ...treeBelow(root, parents)];
  const sample: TreeSample = { processes: members.length, rssBytes: 0, cpuSeconds: 0, openFiles: 0 };
  for (const pid of members) {
    sample.cpuSeconds += (ticks.get(pid) ?? 0) / TICKS_PER_SECOND;
    const status = readOrUndefined(`/proc/${pid}/status`);
    if (status !== undefined) sample.rssBytes += rssFromStatus(status);
    try {
      sample.openFiles += readdirSync(`/proc/${pid}/fd`).length;
    } catch {
      // Not ours to list (a process that changed its credentials) or gone: the rlimit still bounds it.
    }
  }
  return sample;
}
