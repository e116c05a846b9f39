// Pure parsers: recorded kernel files and bwrap's stderr in, a restriction model out. No I/O here.

import { classifyMachine } from "./detect-machine.js";
import type { HostFiles } from "./host-files.js";
import type { RestrictionModel } from "./types.js";

/** What the files say, as values. */
export interface KernelFacts {
  apparmorRestrictsUserns: boolean;
  maxUserNamespaces: number | undefined;
  unprivilegedUsernsClone: number | undefined;
  lsms: string[];
  /** CAP_SYS_ADMIN in the effective set of this process; undefined when /proc/self/status was unreadable. */
  capSysAdmin: boolean | undefined;
  /** 0 none, 1 strict, 2 filter. */
  seccompMode: number | undefined;
  selinuxEnforcing: boolean;
  userNsSupported: boolean;
  grsecurity: boolean;
  /** The container runtime, when there are signs of one. */
  container: string | undefined;
}

const CAP_SYS_ADMIN = 21n;

function intOf(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number.parseInt(text.trim(), 10);
  return Number.isNaN(n) ? undefined : n;
}

/** The value of one `Key:\tvalue` line of /proc/<pid>/status. */
export function statusField(status: string | undefined, key: string): string | undefined {
  if (status === undefined) return undefined;
  const line = status.split("\n").find((l) => l.startsWith(`${key}:`));
  return line?.slice(key.length + 1).trim();
}

/** CapEff is a hex bit mask; bit 21 is CAP_SYS_ADMIN. */
export function hasCapSysAdmin(status: string | undefined): boolean | undefined {
  const capEff = statusField(status, "CapEff");
  if (capEff === undefined || !/^[0-9a-fA-F]+$/.test(capEff)) return undefined;
  return ((BigInt(`0x${capEff}`) >> CAP_SYS_ADMIN) & 1n) === 1n;
}

/** The container runtime the evidence names, or undefined when this is no container (a VM with /.dockerenv is not). */
export function detectContainer(files: HostFiles): string | undefined {
  const machine = classifyMachine(files);
  return machine.kind === "container" ? machine.runtime : undefined;
}

export function parseHostFiles(files: HostFiles): KernelFacts {
  return {
    apparmorRestrictsUserns: intOf(files.apparmorRestrictUserns) === 1,
    maxUserNamespaces: intOf(files.maxUserNamespaces),
    unprivilegedUsernsClone: intOf(files.unprivilegedUsernsClone),
    lsms: (files.lsm ?? "").trim().split(",").filter(Boolean),
    capSysAdmin: hasCapSysAdmin(files.procSelfStatus),
    seccompMode: intOf(statusField(files.procSelfStatus, "Seccomp")),
    selinuxEnforcing: intOf(files.selinuxEnforce) === 1,
    userNsSupported: files.userNsFile,
    grsecurity: files.grsecurity,
    container: detectContainer(files),
  };
}

/** What bwrap's stderr says went wrong. */
export type BwrapFailure =
  | "uid-map" // "setting up uid map: Permission denied": AppArmor or SELinux let the namespace be made, then refused it
  | "loopback" // "Failed RTM_NEWADDR": the network namespace's loopback could not be configured
  | "userns-limit" // ENOSPC: user.max_user_namespaces is 0 or the nesting depth is reached
  | "userns-disabled" // bwrap's own hint about kernel.unprivileged_userns_clone
  | "proc-mount" // "Can't mount proc": a container with a masked /proc
  | "eperm" // any other "Operation not permitted"
  | "eacces" // any other "Permission denied"
  | "other";

const FAILURE_PATTERNS: [BwrapFailure, RegExp][] = [
  ["uid-map", /setting up uid map|write to uid_map|uid_map.*Permission denied/i],
  ["loopback", /RTM_NEWADDR|RTM_NEWLINK|loopback: Failed/i],
  ["userns-limit", /No space left on device|ENOSPC|max_\*?_?(user_)?namespaces exceeded/i],
  ["userns-disabled", /unprivileged_userns_clone|No permissions to creat(e|ing) new namespace/i],
  ["proc-mount", /Can't mount proc/i],
  ["eperm", /Operation not permitted|EPERM/i],
  ["eacces", /Permission denied|EACCES/i],
];

export function classifyBwrapStderr(stderr: string): BwrapFailure {
  for (const [failure, re] of FAILURE_PATTERNS) if (re.test(stderr)) return failure;
  return "other";
}

/** The outcome of detection's probe launches, reduced to what the model depends on. */
export interface ProbeSummary {
  bwrapFound: boolean;
  /** The launch with every namespace, the user namespace included, worked. */
  fullOk: boolean;
  /** bwrap's stderr from the failed full launch, "" when it worked. */
  fullStderr: string;
}

/** Which restriction model explains the probe: kernel files first, then bwrap's own words. */
export function decideModel(facts: KernelFacts, platform: NodeJS.Platform, probe: ProbeSummary): RestrictionModel {
  if (platform !== "linux") return "platform";
  if (!probe.bwrapFound) return "bwrap-missing";
  if (probe.fullOk) return "none";
  const failure = classifyBwrapStderr(probe.fullStderr);
  // A container's seccomp filter or masked /proc is the cause unless a host sysctl really is off: bwrap's EPERM hint
  // names kernel.unprivileged_userns_clone whatever refused it, so its words alone do not mean "sysctl".
  const sysctlOff = facts.maxUserNamespaces === 0 || facts.unprivilegedUsernsClone === 0 || failure === "userns-limit";
  if (facts.container !== undefined && !sysctlOff) {
    if (facts.capSysAdmin === false || facts.seccompMode === 2 || failure === "proc-mount") return "container";
  }
  if (facts.maxUserNamespaces === 0 || failure === "userns-limit") return "sysctl";
  if (facts.unprivilegedUsernsClone === 0 || failure === "userns-disabled") return "sysctl";
  if (facts.apparmorRestrictsUserns) return "apparmor";
  if (facts.selinuxEnforcing && (failure === "uid-map" || failure === "eacces" || failure === "eperm"))
    return "selinux";
  if (!facts.userNsSupported || facts.grsecurity) return "hardened";
  if (facts.lsms.includes("apparmor") && (failure === "uid-map" || failure === "loopback")) return "apparmor";
  if (facts.container !== undefined && failure === "proc-mount") return "container";
  return "unknown";
}

/** `bwrap --version` prints "bubblewrap 0.8.0". */
export function parseBwrapVersion(stdout: string): string | undefined {
  return /bubblewrap\s+(\S+)/.exec(stdout)?.[1];
}

/** The Landlock probe prints the ABI version, or a negative errno when the kernel has none. */
export function parseLandlockProbe(stdout: string): number {
  const n = intOf(stdout);
  return n !== undefined && n > 0 ? n : 0;
}
