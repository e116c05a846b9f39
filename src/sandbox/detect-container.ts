// Pure: in a container, which layers stop bwrap (sysctl, seccomp, AppArmor, masked /proc), from recorded evidence.

import { classifyBwrapStderr, statusField, type KernelFacts } from "./detect-parse.js";
import type { HostFiles } from "./host-files.js";
import { classifyMachine, maskedProcPaths, parseMountinfo } from "./detect-machine.js";
import type { ContainerBlocker, ContainerDiagnosis } from "./types.js";

/** bwrap met a refused namespace creation (EPERM from unshare/clone), not a later mount. */
const NAMESPACE_REFUSED =
  /Creating new namespace failed|No permissions to creat(e|ing) new namespace|unshare.*(Operation not permitted|EPERM)/i;

/**
 * Which layers stop bwrap, in the order a launch meets them: seccomp refuses unshare (Docker's default profile lets
 * it through only with CAP_SYS_ADMIN), a sysctl or AppArmor forbids user namespaces, then the masked /proc makes the
 * kernel refuse bwrap's proc mount. `bwrapStderr` is the failed full launch's; "" when it worked.
 */
export function diagnoseContainer(
  files: HostFiles,
  facts: KernelFacts,
  bwrapOk: boolean,
  bwrapStderr: string,
): ContainerDiagnosis {
  const machine = classifyMachine(files);
  const base = { ...machine, capSysAdmin: facts.capSysAdmin, blockers: [] as ContainerBlocker[] };
  if (machine.kind !== "container" || bwrapOk) return base;
  const failure = classifyBwrapStderr(bwrapStderr);
  const procRefused = failure === "proc-mount";
  // Under a seccomp filter any other EPERM is the filter's: with --cap-add SYS_ADMIN Docker's profile lets unshare
  // through but still has no rule for pivot_root ("pivot_root: Operation not permitted").
  const refused = NAMESPACE_REFUSED.test(bwrapStderr) || (facts.seccompMode === 2 && failure === "eperm");
  const sysctlOff = facts.maxUserNamespaces === 0 || facts.unprivilegedUsernsClone === 0;
  const label = files.lsmLabel?.trim() ?? "";
  const blockers: ContainerBlocker[] = [];
  if (sysctlOff) {
    const what =
      facts.maxUserNamespaces === 0 ? "user.max_user_namespaces = 0" : "kernel.unprivileged_userns_clone = 0";
    blockers.push({
      layer: "sysctl",
      evidence: `${what} (set on the host kernel, not by the container)`,
      hit: refused,
    });
  }
  if (facts.seccompMode === 2 && !sysctlOff) {
    const filters = statusField(files.procSelfStatus, "Seccomp_filters");
    const cap =
      machine.runtime === "podman"
        ? "; podman's default profile lets unshare through but refuses sethostname, which bwrap's --hostname needs"
        : facts.capSysAdmin === false
          ? "; without CAP_SYS_ADMIN Docker's default profile refuses unshare"
          : "; with CAP_SYS_ADMIN Docker's default profile lets unshare through but still refuses pivot_root";
    blockers.push({
      layer: "seccomp",
      evidence: `a seccomp filter is in force (Seccomp: 2${filters ? `, ${filters} filter(s)` : ""})${cap}`,
      hit: refused,
    });
  }
  if (facts.apparmorRestrictsUserns) {
    blockers.push({
      layer: "apparmor",
      evidence: "kernel.apparmor_restrict_unprivileged_userns = 1 on the host kernel",
      hit: false,
    });
  } else if (/^docker-default|^containers-default|^cri-containerd/.test(label)) {
    blockers.push({
      layer: "apparmor",
      evidence: `the container runs under the AppArmor profile ${label}, which denies mount`,
      hit: false,
    });
  }
  const masked = maskedProcPaths(parseMountinfo(files.mountinfo));
  if (masked.length > 0 || procRefused) {
    const seen =
      masked.length > 0
        ? `${masked.length} paths under /proc are over-mounted (${masked.slice(0, 4).join(", ")}${masked.length > 4 ? ", ..." : ""})`
        : "bwrap could not mount proc";
    blockers.push({
      layer: "masked-proc",
      evidence: `${seen}: the kernel refuses a fresh proc mount in a new namespace`,
      hit: procRefused,
    });
  }
  // Seccomp's refusal comes first; when bwrap got past it, the filter did not stop it (e.g. --cap-add SYS_ADMIN).
  const kept =
    refused || !procRefused ? blockers : blockers.filter((b) => b.layer !== "seccomp" && b.layer !== "sysctl");
  return { ...base, blockers: kept, bwrapError: bwrapStderr.trim() };
}
