// Shared test helpers: fixture paths, a venv root reused across test files, and bounded polling.

import { mkdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createConsoleLogger, ExtensionManager, type ManagerOptions } from "../src/index.js";

export const TEST_DIR = dirname(fileURLToPath(import.meta.url));
export const FIXTURES = join(TEST_DIR, "fixtures", "extensions");
/** Venvs of dependency-free fixtures are shared by the test files: an unchanged venv costs nothing. */
export const SHARED_VENV_ROOT = join(tmpdir(), "pyisolate-test-venvs");
mkdirSync(SHARED_VENV_ROOT, { recursive: true });

export function fixture(name: string): string {
  return join(FIXTURES, name);
}

export function makeManager(options: Partial<ManagerOptions> = {}): ExtensionManager {
  return new ExtensionManager({
    venvRoot: SHARED_VENV_ROOT,
    forwardOutput: false,
    logger: createConsoleLogger("silent"),
    ...options,
  });
}

/** Is a process with this pid alive (and not a zombie)? */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return false;
  }
}

/** Polls `check` until it is true or `timeoutMs` passes; for things with no event to wait on (a pid dying). */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = "condition",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
