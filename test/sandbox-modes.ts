// Shared by the tests that run one case under every sandbox mode: the modes, and why one cannot run on this host.

import type { SandboxOptions } from "../src/index.js";
import type { SandboxCapabilities } from "../src/sandbox/types.js";

export interface SandboxMode {
  label: string;
  /** A short tag for extension names. */
  tag: string;
  sandbox: SandboxOptions;
}

/** Unsandboxed (the control), bwrap, and Landlock forced even where bwrap works. */
export const SANDBOX_MODES: readonly SandboxMode[] = [
  { label: "the sandbox disabled", tag: "none", sandbox: { mode: "disabled" } },
  { label: "bwrap", tag: "bwrap", sandbox: { mode: "required", backend: "bwrap" } },
  { label: "Landlock", tag: "landlock", sandbox: { mode: "required", backend: "landlock" } },
];

/** Why this mode cannot run here (a skip's reason), or undefined when it can. */
export function unavailableMode(caps: SandboxCapabilities, sandbox: SandboxOptions): string | undefined {
  if (sandbox.backend === "bwrap" && caps.backend !== "bwrap")
    return `bwrap cannot run with every namespace here (model ${caps.model})`;
  if (sandbox.backend === "landlock" && caps.landlockAbi < 6) return `Landlock ABI ${caps.landlockAbi} < 6`;
  return undefined;
}
