// Where the Python guest runtime shipped inside this package lies: a leaf that any folder may import.

import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

/** The Python guest runtime shipped inside this package (python/ beside src/ and dist/). */
export const RUNTIME_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "python");
export const BOOTSTRAP_SCRIPT = join(RUNTIME_ROOT, "pyisolate", "_guest", "bootstrap.py");
/** The launcher that confines itself with Landlock, then execs a command (installs; doctor's CUDA check). */
export const CONFINE_EXEC_SCRIPT = join(RUNTIME_ROOT, "pyisolate", "_guest", "confine_exec.py");
