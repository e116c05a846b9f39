// Shared by the tensor tests: the dependency sets of the numpy and torch fixtures (venvs reused across runs), a Shmem lock.

import { mkdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** numpy from the local index. */
export const NUMPY = ["numpy==2.2.6"];

/** The CPU wheel in /opt/wheels (cp311); pip reads find-links from its config. Slow to build once (~1 min). */
export const TORCH = {
  dependencies: ["numpy==2.2.6", "torch==2.13.0"],
  installer: "pip" as const,
  startTimeoutMs: 600_000,
};

const LOCK_DIR = join(tmpdir(), "pyisolate-test-shmem.lock");
const STALE_LOCK_MS = 5 * 60_000;

/**
 * Runs `fn` while no other test process measures /proc/meminfo Shmem (a machine-wide figure that the tests
 * of other files would disturb): a lock folder, taken with mkdir, waited for, and broken when stale.
 */
export async function whileMeasuringShmem<T>(fn: () => T | Promise<T>): Promise<T> {
  for (;;) {
    try {
      mkdirSync(LOCK_DIR);
      break;
    } catch (error) {
      if ((error as { code?: string }).code !== "EEXIST") throw error;
      try {
        if (Date.now() - statSync(LOCK_DIR).mtimeMs > STALE_LOCK_MS) rmSync(LOCK_DIR, { recursive: true, force: true });
      } catch {
        // released meanwhile
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(LOCK_DIR, { recursive: true, force: true });
  }
}
