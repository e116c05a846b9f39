// Remediation text per gap: the commands a person would run, after pyisolate's platform troubleshooting notes.

import type { KernelFacts } from "./detect-parse.js";
import type { NamespaceSupport, RestrictionModel, SandboxGap } from "./types.js";

const INSTALL_BWRAP = [
  "# Debian/Ubuntu:  sudo apt-get install -y bubblewrap",
  "# Fedora/RHEL:    sudo dnf install -y bubblewrap",
  "# Arch:           sudo pacman -S bubblewrap",
  "# Alpine:         sudo apk add bubblewrap",
  "# openSUSE:       sudo zypper install bubblewrap",
];

function sysctlRemedy(facts: KernelFacts | undefined): string[] {
  const lines: string[] = [];
  if (facts?.unprivilegedUsernsClone === 0 || facts?.maxUserNamespaces !== 0) {
    lines.push(
      "cat /proc/sys/kernel/unprivileged_userns_clone",
      "sudo sysctl -w kernel.unprivileged_userns_clone=1",
      "echo 'kernel.unprivileged_userns_clone=1' | sudo tee /etc/sysctl.d/99-userns.conf",
    );
  }
  if (facts?.maxUserNamespaces === 0 || facts === undefined) {
    lines.push(
      "cat /proc/sys/user/max_user_namespaces",
      "sudo sysctl -w user.max_user_namespaces=15000",
      "echo 'user.max_user_namespaces=15000' | sudo tee /etc/sysctl.d/99-userns.conf",
    );
  }
  return lines;
}

const MODEL_GAPS: Record<Exclude<RestrictionModel, "none">, (facts: KernelFacts | undefined) => SandboxGap> = {
  apparmor: () => ({
    id: "userns-apparmor",
    problem:
      "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1): bwrap runs without a user namespace",
    remedy: [
      "aa-status | grep bwrap",
      "cat /sys/module/apparmor/parameters/enabled",
      "# give bwrap its own profile that allows user namespaces:",
      "printf 'abi <abi/4.0>,\\ninclude <tunables/global>\\nprofile bwrap /usr/bin/bwrap flags=(unconfined) {\\n  userns,\\n}\\n' | sudo tee /etc/apparmor.d/bwrap",
      "sudo apparmor_parser -r /etc/apparmor.d/bwrap",
      "# or lift the restriction for the whole system (less safe):",
      "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0",
    ],
  }),
  sysctl: (facts) => ({
    id: "userns-sysctl",
    problem: "user namespaces are disabled by a sysctl: bwrap runs without a user namespace",
    remedy: sysctlRemedy(facts),
  }),
  selinux: () => ({
    id: "userns-selinux",
    problem: "SELinux (enforcing) refuses bwrap's namespace setup",
    remedy: [
      "getenforce",
      "sudo ausearch -m AVC -ts recent -c bwrap",
      "sudo ausearch -m AVC -ts recent -c bwrap | audit2allow -M pyisolate-bwrap && sudo semodule -i pyisolate-bwrap.pp",
    ],
  }),
  hardened: () => ({
    id: "userns-hardened",
    problem:
      "this kernel offers no unprivileged user namespaces (built without CONFIG_USER_NS, or a hardening patch set)",
    remedy: [
      "ls /proc/self/ns/user   # absent: the kernel lacks CONFIG_USER_NS=y",
      "sudo sysctl -w kernel.unprivileged_userns_clone=1   # linux-hardened",
      "# or boot a distribution kernel with CONFIG_USER_NS=y",
    ],
  }),
  // The evidence-based remedy is detect-container-remedy.ts; this one stands when no layer could be named. Both give
  // only what the container matrix measured to work (no --cap-add SYS_ADMIN: it leaves the masked /proc in the way).
  container: () => ({
    id: "userns-container",
    problem: "this container's seccomp profile or masked /proc stops bwrap",
    remedy: [
      "grep Seccomp: /proc/self/status; grep ' /proc/' /proc/self/mountinfo",
      "# Docker: docker run --security-opt seccomp=unconfined --security-opt systempaths=unconfined ...",
      "# Kubernetes: securityContext: { seccompProfile: { type: Unconfined }, procMount: Unmasked } with hostUsers: false",
    ],
  }),
  platform: () => ({
    id: "platform",
    problem: "this OS has no Linux namespaces: extensions would run without a sandbox",
    remedy: [
      "# run the host on Linux, or on Windows inside WSL2:",
      "wsl --install",
      "uname -r   # in WSL2: 5.10 or newer",
    ],
  }),
  "bwrap-missing": () => ({
    id: "bwrap-missing",
    problem: "bubblewrap (bwrap) is not installed",
    remedy: INSTALL_BWRAP,
  }),
  unknown: () => ({
    id: "bwrap-unknown",
    problem: "bwrap failed for a reason detection does not recognise (see its stderr)",
    remedy: [
      "bwrap --unshare-all --ro-bind / / --proc /proc --dev /dev true",
      "unshare --user --map-root-user true",
      "sudo dmesg | tail",
    ],
  }),
};

/** The gap a restriction model stands for, or undefined for `none`. */
export function modelGap(model: RestrictionModel, facts?: KernelFacts, stderr?: string): SandboxGap | undefined {
  if (model === "none") return undefined;
  const gap = MODEL_GAPS[model](facts);
  if (stderr && (model === "unknown" || model === "selinux")) gap.problem += `: bwrap said "${stderr.trim()}"`;
  return gap;
}

export function landlockGap(): SandboxGap {
  return {
    id: "landlock-missing",
    problem: "the kernel offers no Landlock: the fallback backend for hosts where bwrap cannot run is unavailable",
    remedy: [
      "uname -r   # Landlock needs 5.13+, network rules 6.7+",
      "cat /sys/kernel/security/lsm   # 'landlock' must be listed",
      "# add landlock to the lsm= list in GRUB_CMDLINE_LINUX (/etc/default/grub), then:",
      "sudo update-grub && sudo reboot",
    ],
  };
}

/** One gap per namespace the fallback launch still could not create. */
export function namespaceGaps(ns: NamespaceSupport): SandboxGap[] {
  const costs: [keyof NamespaceSupport, string][] = [
    ["pid", "the extension can see host processes in /proc"],
    ["net", "the extension shares the host's network"],
    ["ipc", "the extension shares System V IPC with the host"],
  ];
  return costs
    .filter(([name]) => !ns[name])
    .map(([name, cost]) => ({
      id: `no-${name}-namespace`,
      problem: `no ${name} namespace: ${cost}`,
      remedy: ["# the same fix as for user namespaces applies; check with:", `unshare --${name} --fork true`],
    }));
}
