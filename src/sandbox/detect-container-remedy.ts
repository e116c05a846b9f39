// Pure: the remedy for a container whose layers stop bwrap, per runtime, naming only options measured to work.

import type { ContainerDiagnosis, ContainerLayer } from "./types.js";
import type { SandboxGap } from "./types.js";

/**
 * The run options that lift each layer. Docker's seccomp + systempaths pair was measured to make bwrap work
 * (scripts/container-matrix, docs/platforms.md) and is given whole whenever either layer is in the way: lifting one
 * alone was measured not to be enough where both apply, and --cap-add SYS_ADMIN was measured not to help at all (the
 * masked /proc remains), so it is never suggested. Podman's pair was measured too (podman 4.3, rootful and rootless):
 * its profile lets unshare through but refuses bwrap's sethostname, so `unmask=ALL` alone is not enough either.
 * Kubernetes' options are the documented counterparts of the same two layers; AppArmor's are documented, not
 * measured (this machine's kernel has no AppArmor).
 */
const DOCKER: Record<ContainerLayer, string | undefined> = {
  seccomp: "--security-opt seccomp=unconfined",
  "masked-proc": "--security-opt systempaths=unconfined",
  apparmor: "--security-opt apparmor=unconfined",
  sysctl: undefined,
};
const PODMAN: Record<ContainerLayer, string | undefined> = {
  seccomp: "--security-opt seccomp=unconfined",
  "masked-proc": "--security-opt unmask=ALL",
  apparmor: "--security-opt apparmor=unconfined",
  sysctl: undefined,
};
const KUBERNETES: Record<ContainerLayer, string | undefined> = {
  seccomp: "seccompProfile: { type: Unconfined }",
  "masked-proc": "procMount: Unmasked",
  apparmor: "appArmorProfile: { type: Unconfined }",
  sysctl: undefined,
};

/** The layers whose options are given: seccomp and the masked /proc travel together (see above). */
function remedyLayers(found: ContainerLayer[]): ContainerLayer[] {
  const pair: ContainerLayer[] =
    found.includes("seccomp") || found.includes("masked-proc") ? ["seccomp", "masked-proc"] : [];
  return [...pair, ...found.filter((l) => l === "apparmor" || l === "sysctl")];
}

const LAYER_NAMES: Record<ContainerLayer, string> = {
  seccomp: "the seccomp profile",
  "masked-proc": "the masked /proc",
  apparmor: "AppArmor",
  sysctl: "a host sysctl",
};

function runtimeLines(runtime: string | undefined, found: ContainerLayer[]): string[] {
  const layers = remedyLayers(found);
  const pick = (table: Record<ContainerLayer, string | undefined>) =>
    layers.map((l) => table[l]).filter((o): o is string => o !== undefined);
  const lines: string[] = [];
  const docker = pick(DOCKER);
  const podman = pick(PODMAN);
  const kube = pick(KUBERNETES);
  const isKube = runtime === "kubernetes" || runtime === "containerd";
  const isPodman = runtime === "podman";
  if (!isKube && !isPodman && docker.length > 0) lines.push(`# Docker: docker run ${docker.join(" ")} ...`);
  if (!isKube && podman.length > 0) lines.push(`# Podman: podman run ${podman.join(" ")} ...`);
  if (!isPodman && kube.length > 0) {
    const userns = layers.includes("masked-proc")
      ? " with hostUsers: false in the pod spec (procMount: Unmasked needs a user namespace)"
      : "";
    lines.push(`# Kubernetes: the container's securityContext: { ${kube.join(", ")} }${userns}`);
  }
  if (layers.includes("sysctl"))
    lines.push("sudo sysctl -w user.max_user_namespaces=15000   # on the host, not in the container");
  return lines;
}

/** The gap for a container whose layers stop bwrap; undefined when none were found. */
export function containerGap(diag: ContainerDiagnosis, landlockAbi: number): SandboxGap | undefined {
  if (diag.kind !== "container" || diag.blockers.length === 0) return undefined;
  const layers = diag.blockers.map((b) => b.layer);
  const named = layers.map((l) => LAYER_NAMES[l]).join(", then ");
  const confined =
    landlockAbi > 0
      ? `; Landlock (ABI ${landlockAbi}) already confines the extensions here in the default configuration`
      : "; the kernel offers no Landlock either, so extensions cannot be confined until one of these is lifted";
  return {
    id: "userns-container",
    problem: `this ${diag.runtime ?? "container"} container stops bwrap: ${named}${confined}`,
    remedy: [
      ...(diag.bwrapError ? [`# bwrap said: "${diag.bwrapError}"`] : []),
      ...diag.blockers.map((b) => `# ${b.layer}${b.hit ? " (bwrap's error)" : ""}: ${b.evidence}`),
      ...(diag.capSysAdmin === false
        ? [
            "# CAP_SYS_ADMIN is not needed: bwrap gets capabilities in its own user namespace, and adding it leaves the masked /proc in the way",
          ]
        : []),
      ...runtimeLines(diag.runtime, layers),
    ],
  };
}
