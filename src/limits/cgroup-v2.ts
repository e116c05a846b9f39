// The cgroup v2 layer: where the host may make a child cgroup (root, or a delegated subtree), the kernel bounds memory
// and pids for the whole tree. Pure parsing and settings first; the few file writes after them.

import { constants, readFileSync } from "node:fs";
import { access, mkdir, readFile, rmdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ResourceLimits } from "./types.js";

const MIB = 1024 * 1024;

/** Pure: the mount point of the cgroup2 filesystem from /proc/self/mountinfo, or undefined (a cgroup v1 host). */
export function cgroup2Mount(mountinfo: string): string | undefined {
  for (const line of mountinfo.split("\n")) {
    const sep = line.indexOf(" - ");
    if (sep < 0) continue;
    if (line.slice(sep + 3).split(" ")[0] === "cgroup2") return line.slice(0, sep).split(" ")[4];
  }
  return undefined;
}

/** Pure: this process's cgroup v2 path from /proc/self/cgroup (the "0::" line), or undefined. */
export function ownCgroupPath(procSelfCgroup: string): string | undefined {
  const line = procSelfCgroup.split("\n").find((l) => l.startsWith("0::"));
  return line?.slice(3).trim() || undefined;
}

/** Pure: the controllers the limits need; cpu time and open files have none (the watchdog and rlimits keep them). */
export function neededControllers(limits: ResourceLimits): string[] {
  return [...(limits.memoryMiB !== undefined ? ["memory"] : []), ...(limits.pids !== undefined ? ["pids"] : [])];
}

/**
 * Pure: the interface files of one extension's cgroup and what to write in each. Swap is closed so that memory.max
 * is not a soft wall, and an OOM kill takes the group; pids.max adds the sandbox's own processes (`overhead`), which live in the same cgroup.
 */
export function cgroupV2Settings(limits: ResourceLimits, overhead: number): Record<string, string> {
  const out: Record<string, string> = {};
  if (limits.memoryMiB !== undefined) {
    out["memory.max"] = String(limits.memoryMiB * MIB);
    out["memory.swap.max"] = "0";
    // One OOM kill takes the whole tree (supervisor or bwrap included): the host sees the exit and reports the limit.
    out["memory.oom.group"] = "1";
  }
  if (limits.pids !== undefined) out["pids.max"] = String(limits.pids + overhead);
  return out;
}

/** Pure: whether a parent cgroup can hold extension cgroups with `needed`, from its subtree_control and writability. */
export function judgeCgroupParent(
  subtreeControl: string | undefined,
  writable: boolean,
  needed: readonly string[],
): string | undefined {
  if (subtreeControl === undefined) return "no cgroup v2 (cgroup v1 only, or no cgroup2 mount)";
  if (!writable) return "the host's cgroup is not writable by this user (no delegated subtree)";
  const enabled = new Set(subtreeControl.trim().split(/\s+/));
  const missing = needed.filter((c) => !enabled.has(c));
  return missing.length
    ? `the controllers ${missing.join(", ")} are not enabled for the host's child cgroups`
    : undefined;
}

/** Where extension cgroups would go on this host, or why there is none. Reads /proc and the cgroup folder only. */
export async function probeCgroupV2(
  needed: readonly string[] = ["memory", "pids"],
): Promise<{ parent: string } | { reason: string }> {
  let mount: string | undefined;
  let own: string | undefined;
  try {
    mount = cgroup2Mount(await readFile("/proc/self/mountinfo", "utf8"));
    own = ownCgroupPath(await readFile("/proc/self/cgroup", "utf8"));
  } catch {
    return { reason: "no /proc to read" };
  }
  if (!mount || own === undefined) return { reason: judgeCgroupParent(undefined, false, needed)! };
  const parent = join(mount, own);
  const subtree = await readFile(join(parent, "cgroup.subtree_control"), "utf8").catch(() => undefined);
  const writable = await access(parent, constants.W_OK).then(
    () => true,
    () => false,
  );
  const reason = judgeCgroupParent(subtree ?? "", writable, needed);
  return reason ? { reason } : { parent };
}

/** One extension's cgroup: made with its limits, given the spawned process, read at exit, removed. */
export interface ExtensionCgroup {
  /** Moves `pid` in; everything it starts afterwards is born inside. */
  adopt(pid: number): Promise<void>;
  /** How many times the kernel's OOM killer acted in it (memory.events "oom_kill"); sync: read in the exit handler. */
  oomKills(): number;
  remove(): Promise<void>;
}

/** Makes `<parent>/pyisolate-<name>-<pid>` with the settings written; throws if the kernel refuses any step. */
export async function createExtensionCgroup(
  parent: string,
  name: string,
  limits: ResourceLimits,
  overhead: number,
): Promise<ExtensionCgroup> {
  const dir = join(parent, `pyisolate-${name}-${process.pid}-${Date.now()}`);
  await mkdir(dir);
  try {
    for (const [file, value] of Object.entries(cgroupV2Settings(limits, overhead)))
      await writeFile(join(dir, file), value);
  } catch (error) {
    await rmdir(dir).catch(() => {});
    throw error;
  }
  return {
    adopt: (pid) => writeFile(join(dir, "cgroup.procs"), String(pid)),
    oomKills: () => {
      try {
        return Number(/^oom_kill (\d+)$/m.exec(readFileSync(join(dir, "memory.events"), "utf8"))?.[1] ?? 0);
      } catch {
        return 0;
      }
    },
    // Only an empty cgroup can be removed: the caller waits for the exit first.
    remove: () => rmdir(dir).catch(() => {}),
  };
}
