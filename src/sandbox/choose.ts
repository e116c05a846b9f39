// Pure: which backend one load gets, from the mode, the backend it asks for, its policy and what the host allows.

import { SandboxUnavailableError } from "../errors.js";
import type { SandboxBackend, SandboxCapabilities, SandboxPolicy } from "./types.js";

/** The decision for one load: the backend to run, whether it is less than asked, and why (for the warning). */
export interface SandboxChoice {
  backend: SandboxBackend;
  degraded: boolean;
  /** Set when the load got less than it asked for: what was lost, in one sentence. */
  shortfall?: string;
}

/** Landlock polices TCP connect and bind from ABI 4 on; before that a Landlock guest keeps the network. */
export const LANDLOCK_NET_ABI = 4;

/** Why `backend` cannot enforce `policy` on this host, or undefined when it can. */
export function cannotEnforce(
  backend: SandboxBackend,
  policy: SandboxPolicy,
  caps: SandboxCapabilities,
): string | undefined {
  switch (backend) {
    case "bwrap":
      return caps.backend === "bwrap" ? undefined : "bwrap cannot create a user namespace here";
    case "bwrap-degraded":
      // From the probes, not caps.backend: that is the default load's choice, which may pass over a bwrap that runs.
      if (!caps.bwrap || !Object.values(caps.namespaces).some(Boolean)) return "bwrap cannot run here";
      if (!policy.network && !caps.namespaces.net)
        return "bwrap cannot create a network namespace here, and sandbox.network is false";
      return undefined;
    case "landlock":
      if (caps.landlockAbi === 0) return "the kernel offers no Landlock";
      if (!policy.network && caps.landlockAbi < LANDLOCK_NET_ABI) {
        return `Landlock ABI ${caps.landlockAbi} cannot block TCP (needs ABI ${LANDLOCK_NET_ABI}), and sandbox.network is false`;
      }
      return undefined;
    case "none":
      return undefined;
  }
}

function candidates(policy: SandboxPolicy, caps: SandboxCapabilities): SandboxBackend[] {
  if (policy.backend === "landlock") return ["landlock"];
  if (policy.backend === "bwrap") return caps.backend === "bwrap" ? ["bwrap"] : ["bwrap-degraded"];
  return ["bwrap", "bwrap-degraded", "landlock"];
}

function reasonText(caps: SandboxCapabilities, tried: string[]): string {
  const gaps = caps.gaps.map((g) => g.problem);
  return [...tried, ...gaps].join("; ");
}

/**
 * Decide the backend. `required` throws SandboxUnavailableError (with detection's remedies) when no candidate
 * can enforce the policy; `preferred` falls back in order bwrap → bwrap-degraded → landlock → none and says what
 * was lost. `caps` is unused (and may be undefined) for `disabled`.
 */
export function chooseSandbox(
  extension: string,
  policy: SandboxPolicy,
  caps: SandboxCapabilities | undefined,
): SandboxChoice {
  if (policy.mode === "disabled") return { backend: "none", degraded: false };
  if (!caps) throw new Error("chooseSandbox: detection is needed unless the sandbox is disabled");
  const wanted = candidates(policy, caps);
  const tried: string[] = [];
  for (const backend of wanted) {
    const why = cannotEnforce(backend, policy, caps);
    if (why === undefined) {
      // A backend named in the config is what was asked for; in auto mode anything below full bwrap is a fallback.
      const degraded = backend === "bwrap-degraded" || (policy.backend === "auto" && backend !== "bwrap");
      if (!degraded) return { backend, degraded };
      const lost = backend === "bwrap-degraded" ? [...tried, "bwrap runs without a user namespace"] : tried;
      return { backend, degraded, shortfall: lost.join("; ") };
    }
    tried.push(`${backend}: ${why}`);
  }
  const remedy = caps.gaps.flatMap((g) => g.remedy);
  if (policy.mode === "required") {
    throw new SandboxUnavailableError(extension, reasonText(caps, tried), { model: caps.model, remedy });
  }
  // preferred: a named backend that cannot run falls back to the best of the others; then to nothing.
  if (policy.backend !== "auto") {
    const best = chooseSandbox(extension, { ...policy, backend: "auto" }, caps);
    return { ...best, degraded: true, shortfall: [...tried, best.shortfall].filter(Boolean).join("; ") };
  }
  return { backend: "none", degraded: true, shortfall: reasonText(caps, tried) };
}
