// Chooses the venv installer: uv when it is on PATH and runs, else venv + pip (or the one the code asked for).

import { ConfigError } from "../errors.js";
import type { Installer } from "../vocabulary.js";
import type { VenvInstaller } from "./installer.js";
import { pipInstaller } from "./pip.js";
import { findUv, uvInstaller } from "./uv.js";

/** auto: uv when it is on PATH and runs, else venv + pip. */
export async function selectInstaller(choice: Installer, env: NodeJS.ProcessEnv): Promise<VenvInstaller> {
  if (choice === "pip") return pipInstaller();
  const uv = await findUv(env);
  if (uv) return uvInstaller(uv);
  if (choice === "uv") {
    throw new ConfigError(
      'installer "uv" was requested but no working uv was found on PATH (install it with `pip install uv` or use installer "pip")',
      { key: "installer" },
    );
  }
  return pipInstaller();
}
