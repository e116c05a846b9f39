// Shared by the trust-config tests: the three ways each case runs, and fixture copies the tests can change.

import { cpSync, existsSync, mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { SandboxOptions } from "../src/index.js";
import type { SandboxCapabilities } from "../src/sandbox/types.js";
import { fixture } from "./helpers.js";

export interface SandboxCase {
  label: "bwrap" | "landlock" | "disabled";
  sandbox: SandboxOptions;
}

/** Every hostile case runs under bwrap, under Landlock (forced) and unsandboxed: the file is refused in all three. */
export const SANDBOX_CASES: readonly SandboxCase[] = [
  { label: "bwrap", sandbox: { mode: "required", backend: "bwrap" } },
  { label: "landlock", sandbox: { mode: "required", backend: "landlock" } },
  { label: "disabled", sandbox: { mode: "disabled" } },
];

/** Why a case cannot run on this host, or undefined when it can. */
export function unavailable(c: SandboxCase, caps: SandboxCapabilities): string | undefined {
  if (c.label === "bwrap" && caps.backend !== "bwrap")
    return `bwrap cannot run with every namespace here (model ${caps.model})`;
  if (c.label === "landlock" && caps.landlockAbi < 4)
    return `Landlock ABI ${caps.landlockAbi} < 4 cannot keep network: false`;
  return undefined;
}

/** A scratch folder (real path) that holds copies of fixtures next to "outside" folders. */
export function scratch(prefix: string): { dir: string; remove: () => void } {
  const dir = realpathSync(mkdtempSync(path.join(tmpdir(), prefix)));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Copies fixture `name` to `root/as` and returns the copy's path. The hostile fixtures hold only what is hostile (a
 * pyisolate.yaml, a fake interpreter, a preload library's source): the probe's code is copied in beside it.
 */
export function copyFixture(name: string, root: string, as = name): string {
  const dest = path.join(root, as);
  cpSync(fixture(name), dest, { recursive: true });
  if (!existsSync(path.join(dest, "__init__.py")))
    cpSync(path.join(fixture("trust_config_probe"), "__init__.py"), path.join(dest, "__init__.py"));
  return dest;
}
