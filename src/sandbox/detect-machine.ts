// Pure: whether recorded evidence describes a container, a VM or a plain host (mountinfo, markers, the CPU's flags).

import type { HostFiles } from "./host-files.js";
import type { ContainerDiagnosis } from "./types.js";

export interface MachineKind {
  /** A container, a VM (maybe with a stray /.dockerenv), or neither as far as the evidence goes. */
  kind: ContainerDiagnosis["kind"];
  /** The runtime when `kind` is container: docker, podman, kubernetes, containerd, lxc, or the `container` variable. */
  runtime: string | undefined;
  /** The observations behind `kind`, one sentence each. */
  evidence: string[];
}

/** One parsed line of /proc/self/mountinfo. */
export interface Mount {
  point: string;
  options: string;
  fstype: string;
  source: string;
}

export function parseMountinfo(text: string | undefined): Mount[] {
  const mounts: Mount[] = [];
  for (const line of (text ?? "").split("\n")) {
    // "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw": fields 5 and 6, then type and source.
    const m = /^\S+ \S+ \S+ \S+ (\S+) (\S+)(?: \S+)* - (\S+) (\S+)/.exec(line);
    if (m) mounts.push({ point: unescapeOctal(m[1]!), options: m[2]!, fstype: m[3]!, source: m[4]! });
  }
  return mounts;
}

const unescapeOctal = (s: string): string =>
  s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));

/** The mount that shows at `point` (the last one mounted there). */
function mountAt(mounts: Mount[], point: string): Mount | undefined {
  return mounts.filter((m) => m.point === point).at(-1);
}

/**
 * Paths under /proc that something was mounted over (Docker masks /proc/kcore, /proc/keys, ... with /dev/null or an
 * empty tmpfs, and remounts /proc/sys read-only). The kernel then refuses a fresh proc mount in a new namespace,
 * which is what bwrap's `--proc` needs.
 */
export function maskedProcPaths(mounts: Mount[]): string[] {
  return mounts.filter((m) => m.point.startsWith("/proc/")).map((m) => m.point);
}

const ROOT_FS_OF_CONTAINERS = new Set(["overlay", "aufs", "fuse-overlayfs", "shiftfs", "zfs", "btrfs"]);

/** Markers in /proc/1/cgroup, /run/.containerenv and the `container` variable; /.dockerenv is weighed separately. */
function runtimeMarker(files: HostFiles): string | undefined {
  if (files.containerVar) return files.containerVar;
  if (files.containerenv) return "podman";
  const cgroup = files.proc1Cgroup ?? "";
  if (/\bkubepods\b/.test(cgroup)) return "kubernetes";
  if (/\bdocker\b/.test(cgroup)) return "docker";
  if (/\blibpod\b|\bpodman\b/.test(cgroup)) return "podman";
  if (/\bcontainerd\b|\bcri-containerd\b/.test(cgroup)) return "containerd";
  if (/\blxc\b/.test(cgroup)) return "lxc";
  return undefined;
}

/**
 * Container or VM, from evidence rather than one marker file: /.dockerenv alone is not enough when the root file
 * system is a block device and the CPU reports a hypervisor (a VM image built from a container keeps the file).
 */
export function classifyMachine(files: HostFiles): MachineKind {
  const mounts = parseMountinfo(files.mountinfo);
  const root = mountAt(mounts, "/");
  const masked = maskedProcPaths(mounts);
  const evidence: string[] = [];
  const marker = runtimeMarker(files);
  if (marker) evidence.push(`runtime marker: ${marker}`);
  if (files.dockerenv) evidence.push("/.dockerenv exists");
  if (root) evidence.push(`the root file system is ${root.fstype} from ${root.source}`);
  if (masked.length > 0)
    evidence.push(
      `/proc is masked (${masked.length} over-mounts: ${masked.slice(0, 3).join(", ")}${masked.length > 3 ? ", ..." : ""})`,
    );
  if (files.hypervisor) evidence.push("the CPU reports a hypervisor");
  const containerRoot = root !== undefined && ROOT_FS_OF_CONTAINERS.has(root.fstype);
  const blockRoot = root !== undefined && /^\/dev\/(vd|sd|xvd|nvme|hd|mmcblk)/.test(root.source);
  if (marker) return { kind: "container", runtime: marker, evidence };
  if (containerRoot || masked.length > 0)
    return { kind: "container", runtime: files.dockerenv ? "docker" : "unknown", evidence };
  if (files.dockerenv && !(files.hypervisor && blockRoot)) return { kind: "container", runtime: "docker", evidence };
  if (files.hypervisor) return { kind: "vm", runtime: undefined, evidence };
  return { kind: "host", runtime: undefined, evidence };
}
