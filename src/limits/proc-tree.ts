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
  /** Open descriptors of every member whose /proc/<pid>/fd the host may list (below `hostLevels`, if given). */
  openFiles: number;
}

/** Pure: a /proc/<pid>/stat line's fields after the command name (which may hold spaces and parentheses). */
export function statFields(stat: string): string[] {
  return stat
    .slice(stat.lastIndexOf(")") + 2)
    .trim()
    .split(/\s+/);
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

/**
 * Pure: VmRSS in bytes from a /proc/<pid>/status text (0 for a zombie, which has none). The last such line: the
 * kernel's comes after the process-chosen Name (which the kernel escapes anyway).
 */
export function rssFromStatus(status: string): number {
  const all = [...status.matchAll(/^VmRSS:\s+(\d+)\s+kB/gm)];
  const kb = all[all.length - 1];
  return kb ? Number(kb[1]) * 1024 : 0;
}

/** What to measure besides the process count and CPU time: each costs reads per member, so only what a limit needs. */
export interface SampleWhat {
  rss?: boolean;
  openFiles?: boolean;
  /**
   * Descriptors of the tree's first this many levels (the sandbox's own processes: bwrap's two, or the guest's
   * supervisor) are not counted: they are the host's, and a guest at its own RLIMIT_NOFILE plus them is no excess.
   */
  hostLevels?: number;
  /**
   * Each member counts at most this many descriptors: RLIMIT_NOFILE bounds a process by fd number, and fds numbered
   * past it that it inherited (the pinned paths) would otherwise make a process at its own EMFILE an excess.
   */
  openFilesEach?: number;
}

/** A member of a tree: its CPU ticks and how far below the root it is (the root is 0). */
interface Member {
  ticks: number;
  depth: number;
}

/**
 * The members of `root`'s tree with their CPU ticks, found through each task's `children` file (cost in proportion
 * to the tree); where the kernel lacks them (CONFIG_PROC_CHILDREN), by a scan of every process's stat.
 */
function treeMembers(root: number): Map<number, Member> | undefined {
  const members = new Map<number, Member>();
  const rootStat = readOrUndefined(`/proc/${root}/stat`);
  if (rootStat === undefined) return undefined;
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${root}/task`);
  } catch {
    return undefined;
  }
  if (readOrUndefined(`/proc/${root}/task/${tasks[0]}/children`) === undefined) return scanMembers(root);
  members.set(root, { ticks: parseStat(rootStat).ticks, depth: 0 });
  const todo = [root];
  while (todo.length) {
    const pid = todo.pop()!;
    const depth = members.get(pid)!.depth + 1;
    let threads: string[];
    try {
      threads = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue; // gone meanwhile
    }
    for (const tid of threads) {
      for (const child of (readOrUndefined(`/proc/${pid}/task/${tid}/children`) ?? "").split(" ")) {
        const n = Number(child);
        if (!child || members.has(n)) continue;
        const stat = readOrUndefined(`/proc/${n}/stat`);
        if (stat === undefined) continue;
        members.set(n, { ticks: parseStat(stat).ticks, depth });
        todo.push(n);
      }
    }
  }
  return members;
}

/** The fallback: every process's parent from its stat, then the tree below `root`. */
function scanMembers(root: number): Map<number, Member> | undefined {
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
  const members = new Map<number, Member>([[root, { ticks: ticks.get(root) ?? 0, depth: 0 }]]);
  // treeBelow lists parents before children, so each parent's depth is known when its child comes.
  for (const pid of treeBelow(root, parents)) {
    members.set(pid, { ticks: ticks.get(pid) ?? 0, depth: (members.get(parents.get(pid)!)?.depth ?? 0) + 1 });
  }
  return members;
}

/** Samples the tree of `root` (it included); undefined when `root` is gone. Reads only /proc, follows nothing. */
export function sampleTree(root: number, what: SampleWhat = { rss: true, openFiles: true }): TreeSample | undefined {
  const members = treeMembers(root);
  if (members === undefined) return undefined;
  const sample: TreeSample = { processes: members.size, rssBytes: 0, cpuSeconds: 0, openFiles: 0 };
  for (const [pid, { ticks, depth }] of members) {
    sample.cpuSeconds += ticks / TICKS_PER_SECOND;
    if (what.rss) {
      const status = readOrUndefined(`/proc/${pid}/status`);
      if (status !== undefined) sample.rssBytes += rssFromStatus(status);
    }
    if (!what.openFiles || depth < (what.hostLevels ?? 0)) continue;
    try {
      sample.openFiles += Math.min(readdirSync(`/proc/${pid}/fd`).length, what.openFilesEach ?? Infinity);
    } catch {
      // Not ours to list (a process that changed its credentials) or gone: the rlimit still bounds it.
    }
  }
  return sample;
}
