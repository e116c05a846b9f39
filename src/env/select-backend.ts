// Chooses the venv backend: uv when it is on PATH and runs, else venv + pip (or the one the code asked for).

import { ConfigError } from "../errors.js";
import type { Installer } from "../vocabulary.js";
import type { Backend } from "./backend.js";
import { pipBackend } from "./pip.js";
import { findUv, uvBackend } from "./uv.js";

/** auto: uv when it is on PATH and runs, else venv + pip. */
export async function selectBackend(choice: Installer, env: NodeJS.ProcessEnv): Promise<Backend> {
  if (choice === "pip") return pipBackend();
  const uv = await findUv(env);
  if (uv) return uvBackend(uv);
  if (choice === "uv") {
    throw new ConfigError(
      'installer "uv" was requested but no working uv was found on PATH (install it with `pip install uv` or use installer "pip")',
      { key: "installer" },
    );
  }
  return pipBackend();
}
