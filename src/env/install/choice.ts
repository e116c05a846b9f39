// Pure: which confinement one dependency install gets (bwrap, bwrap without a user namespace, Landlock), or why none.

import { LANDLOCK_NET_ABI } from "../../sandbox/choose.js";
import type { SandboxCapabilities } from "../../sandbox/types.js";
import type { InstallSandboxKind, InstallSandboxOptions } from "../types.js";

/** Which confinement one install gets, or why none can be had (with the remedy of the host's first gap). */
export type InstallBackendChoice =
  { kind: Exclude<InstallSandboxKind, "none">; note?: string } | { kind: "none"; reason: string; remedy: string[] };

/**
 * Pure: the install backend from the options and detection. `auto` takes bwrap (or bwrap without a user
 * namespace), else Landlock; a named backend is taken only if it can run. Landlock before ABI 4 cannot block
 * TCP, so it is refused when the install asks for no network.
 */
export function chooseInstallBackend(
  options: Pick<InstallSandboxOptions, "backend" | "network">,
  caps: SandboxCapabilities,
): InstallBackendChoice {
  const wanted = options.backend ?? "auto";
  const gap = caps.gaps[0];
  const bwrapWhy =
    caps.bwrap && (caps.backend === "bwrap" || caps.backend === "bwrap-degraded")
      ? undefined
      : `bubblewrap cannot run here${gap ? `: ${gap.problem}` : ""}`;
  let landlockWhy: string | undefined;
  if (caps.landlockAbi === 0) landlockWhy = "the kernel offers no Landlock";
  else if (options.network === false && caps.landlockAbi < LANDLOCK_NET_ABI)
    landlockWhy = `Landlock ABI ${caps.landlockAbi} cannot block TCP (needs ABI ${LANDLOCK_NET_ABI}), and sandbox.network is false`;
  const landlock = (note?: string): InstallBackendChoice => ({ kind: "landlock", ...(note ? { note } : {}) });
  const bwrapKind = (): InstallBackendChoice => ({ kind: caps.backend === "bwrap" ? "bwrap" : "bwrap-degraded" });
  const remedy = gap?.remedy ?? [];
  if (wanted === "bwrap")
    return bwrapWhy
      ? { kind: "none", reason: `installing dependencies needs bubblewrap, and ${bwrapWhy}`, remedy }
      : bwrapKind();
  if (wanted === "landlock")
    return landlockWhy
      ? { kind: "none", reason: `installing dependencies under Landlock is not possible: ${landlockWhy}`, remedy }
      : landlock();
  if (!bwrapWhy) return bwrapKind();
  if (!landlockWhy) return landlock(`${bwrapWhy}; confining the install with Landlock instead`);
  return {
    kind: "none",
    reason: `installing dependencies needs bubblewrap or Landlock: ${bwrapWhy}; ${landlockWhy}`,
    remedy,
  };
}
