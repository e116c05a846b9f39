// The sandbox's vocabulary as data: what blocks isolation, what the host can do, and what an extension asks for.

/**
 * Why (or whether) bubblewrap cannot have everything it needs on this host.
 * - `none`: nothing blocks it: full namespace isolation.
 * - `apparmor`: Ubuntu's `kernel.apparmor_restrict_unprivileged_userns` confines user namespaces.
 * - `sysctl`: `user.max_user_namespaces = 0` or `kernel.unprivileged_userns_clone = 0`.
 * - `selinux`: an enforcing SELinux policy refuses the namespace setup.
 * - `hardened`: the kernel was built without user namespaces, or a hardening patch set blocks them.
 * - `container`: a container without CAP_SYS_ADMIN or with a seccomp filter that refuses namespaces.
 * - `platform`: not Linux: there are no namespaces at all.
 * - `bwrap-missing`: bubblewrap is not installed.
 * - `unknown`: the probe failed for a reason none of the above explains (its stderr is kept).
 */
export type RestrictionModel =
  "none" | "apparmor" | "sysctl" | "selinux" | "hardened" | "container" | "platform" | "bwrap-missing" | "unknown";

export const RESTRICTION_MODELS: readonly RestrictionModel[] = [
  "none",
  "apparmor",
  "sysctl",
  "selinux",
  "hardened",
  "container",
  "platform",
  "bwrap-missing",
  "unknown",
];

/** Which namespaces a bwrap launch can create on this host. */
export interface NamespaceSupport {
  user: boolean;
  pid: boolean;
  net: boolean;
  ipc: boolean;
  uts: boolean;
  cgroup: boolean;
}

/** Every namespace: what `buildBwrapArgs` assumes when told nothing. */
export const ALL_NAMESPACES: Readonly<NamespaceSupport> = Object.freeze({
  user: true,
  pid: true,
  net: true,
  ipc: true,
  uts: true,
  cgroup: true,
});

/**
 * Which confinement a launch gets: bwrap with every namespace, bwrap without a user namespace (filesystem
 * isolation still on), the guest's own Landlock rules, or nothing.
 */
export type SandboxBackend = "bwrap" | "bwrap-degraded" | "landlock" | "none";

/** One thing this host lacks, and what a person would run to fix it. */
export interface SandboxGap {
  /** Stable id, e.g. "userns-sysctl", "landlock-missing". */
  id: string;
  /** One sentence: what is missing and what it costs. */
  problem: string;
  /** Commands or steps, one per line, as a person would type them. */
  remedy: string[];
}

/** What `detectSandbox()` found on this host. */
export interface SandboxCapabilities {
  platform: NodeJS.Platform;
  model: RestrictionModel;
  /** The best backend this host offers, in order bwrap > bwrap-degraded > landlock > none. */
  backend: SandboxBackend;
  bwrap: { path: string; version: string | undefined } | undefined;
  namespaces: NamespaceSupport;
  /** Landlock ABI version, 0 when the kernel has none. */
  landlockAbi: number;
  inContainer: boolean;
  /** What the evidence says this machine is and, in a container, which layers stop bwrap (absent off Linux). */
  container?: ContainerDiagnosis;
  /** Each probe launch that ran: its argv and, when it failed, bwrap's own words. */
  probes: ProbeRecord[];
  gaps: SandboxGap[];
}

export interface ProbeRecord {
  argv: string[];
  ok: boolean;
  exitCode: number | null;
  stderr: string;
}

// The vocabularies live in one leaf list (../vocabulary.ts); re-exported where the sandbox's callers look for them.
import type { SandboxBackendChoice, SandboxMode } from "../vocabulary.js";
export type { SandboxBackendChoice, SandboxMode };

/** What confined one extension, as shown on `Extension.sandbox` and in its logs. */
export interface SandboxInfo {
  backend: SandboxBackend;
  /** The host's restriction model; undefined when the sandbox was disabled (nothing was detected). */
  model: RestrictionModel | undefined;
  /** True when the load got less than it asked for: a fallback from full bwrap, or none at all in `preferred` mode. */
  degraded: boolean;
}

/** The `sandbox` option of `load`, after defaults. */
export interface SandboxPolicy {
  mode: SandboxMode;
  /** Give the extension the host's network (default false: a private, empty network namespace). */
  network: boolean;
  /** Host paths the extension may write, bound at the same path. Checked by `guardConfigPaths` first. */
  writablePaths: string[];
  /** Extra host paths the extension may read, bound read-only at the same path. */
  readonlyPaths: string[];
  /** Bind the GPU device nodes and the parts of /sys that CUDA reads. */
  gpu: boolean;
  /**
   * Under Landlock, let the extension make Unix sockets (multiprocessing.Manager, the forkserver start method,
   * passing fds between workers as torch's DataLoader does). It can then also connect to any Unix socket by path
   * its uid may use (/run/docker.sock). No effect under bwrap, where host sockets are not in the file system.
   */
  unixSockets: boolean;
  /** Which backend to use; `auto` takes the best this host offers. */
  backend: SandboxBackendChoice;
}

export const DEFAULT_SANDBOX_POLICY: Readonly<SandboxPolicy> = Object.freeze({
  mode: "required",
  network: false,
  writablePaths: [],
  readonlyPaths: [],
  gpu: false,
  unixSockets: false,
  backend: "auto",
});

/** One layer of a container that stops bwrap, with the evidence that says so. */
export type ContainerLayer = "seccomp" | "masked-proc" | "apparmor" | "sysctl";

export interface ContainerBlocker {
  layer: ContainerLayer;
  /** What was read or seen, in one sentence. */
  evidence: string;
  /** bwrap's own error is this layer's (the first layer a launch meets; the others come after it). */
  hit: boolean;
}

/** What the evidence says about this machine and, in a container, what stops bwrap. */
export interface ContainerDiagnosis {
  kind: "container" | "vm" | "host";
  runtime: string | undefined;
  /** The observations behind `kind`. */
  evidence: string[];
  /** In the order a bwrap launch meets them; empty when bwrap works or nothing container-specific explains it. */
  blockers: ContainerBlocker[];
  /** CAP_SYS_ADMIN in the effective set; reported because it is the commonly blamed and wrongly added capability. */
  capSysAdmin: boolean | undefined;
  /** bwrap's own words from the failed full launch, when it failed in a container. */
  bwrapError?: string;
}
