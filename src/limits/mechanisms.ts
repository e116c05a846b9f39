// Pure: which mechanism enforces each limit on a host, for `pyisolate doctor` and docs/reliability.md.

import { LIMIT_NAMES, type LimitName } from "./types.js";

export interface LimitSupport {
  /** "full": the kernel bounds the whole tree (cgroup v2); "degraded": rlimits per process and the host's watchdog. */
  status: "full" | "degraded";
  /** The parent cgroup extensions get a child of, or null with the reason in `cgroupReason`. */
  cgroupV2: string | null;
  cgroupReason: string | null;
  /** Per limit, the mechanisms in force on this host, strongest first. */
  enforcedBy: Record<LimitName, string[]>;
}

/** Pure: the mechanisms per limit, given what the cgroup probe found and whether bwrap (its tmpfs size) is the backend. */
export function limitSupport(cgroup: { parent: string } | { reason: string }, bwrap: boolean): LimitSupport {
  const v2 = "parent" in cgroup;
  const enforcedBy = Object.fromEntries(LIMIT_NAMES.map((name) => [name, [] as string[]])) as Record<
    LimitName,
    string[]
  >;
  if (v2) {
    enforcedBy.memoryMiB.push("cgroup v2 memory.max");
    enforcedBy.pids.push("cgroup v2 pids.max");
  }
  enforcedBy.memoryMiB.push("RLIMIT_DATA per process", "watchdog (RSS of the tree)");
  enforcedBy.cpuSeconds.push("RLIMIT_CPU per process", "watchdog (CPU time of the tree)");
  enforcedBy.pids.push("watchdog (processes of the tree)");
  enforcedBy.openFiles.push("RLIMIT_NOFILE per process", "watchdog (descriptors of the tree)");
  if (bwrap) enforcedBy.diskMiB.push("bwrap --size (private /tmp, /dev/shm)");
  enforcedBy.diskMiB.push("RLIMIT_FSIZE per file", "watchdog (private HOME and tmp)");
  return {
    status: v2 ? "full" : "degraded",
    cgroupV2: v2 ? cgroup.parent : null,
    cgroupReason: v2 ? null : cgroup.reason,
    enforcedBy,
  };
}

/** Pure: one line for the doctor's table. */
export function limitSupportLine(s: LimitSupport): string {
  const how = s.cgroupV2 ? `cgroup v2 under ${s.cgroupV2}` : `no cgroup v2: ${s.cgroupReason}`;
  return `${how}; every limit enforced (memoryMiB, cpuSeconds, pids, openFiles, diskMiB) by rlimits and the watchdog`;
}
