// Whether this machine has the local CPU torch wheel that the shared-torch tests install (no test downloads torch).

import { existsSync, readdirSync } from "node:fs";

export const TORCH_REQUIREMENT = "torch==2.13.0";

/** The find-links folders pip is told about (PIP_FIND_LINKS) and /opt/wheels, where CI keeps the wheel. */
export function hasLocalTorchWheel(): boolean {
  const dirs = [...(process.env.PIP_FIND_LINKS ?? "").split(/\s+/), "/opt/wheels"].filter(
    (d) => d.startsWith("/") && existsSync(d),
  );
  return dirs.some((dir) => readdirSync(dir).some((f) => f.startsWith("torch-2.13.0") && f.endsWith(".whl")));
}
