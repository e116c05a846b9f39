// Puts one extension's limits in force after its spawn (cgroup v2 where the host has one, the watchdog always) and
// reads its exit for the kernel's own stops; the rlimits travel in its environment (see process/launch.ts).

import { ExtensionLimitError, type ExitInfo } from "../errors.js";
import type { Logger } from "../logger.js";
import { createExtensionCgroup, neededControllers, probeCgroupV2, type ExtensionCgroup } from "./cgroup-v2.js";
import { limitErrorForExit } from "./rlimits.js";
import { hasLimits, type ResourceLimits } from "./types.js";
import { sandboxOverhead, startWatchdog } from "./watchdog.js";

export interface EnforceInput {
  name: string;
  /** The spawned process (the group leader). */
  pid: number;
  /** The sandbox backend, which decides how many processes of the tree are its own. */
  backend: string;
  /** The private HOME and tmp on the host's disk. */
  folders: readonly string[];
  limits: ResourceLimits | undefined;
  logger: Logger;
  /** The watchdog found a limit passed: stop the extension with this error. */
  onExceeded(error: ExtensionLimitError): void;
}

export interface Enforcement {
  /** The limit error an exit stands for (SIGXCPU from RLIMIT_CPU, an OOM kill in its cgroup), if any. */
  exitError(exit: ExitInfo): ExtensionLimitError | undefined;
  /** Stops the watchdog and removes the cgroup once the process is gone. Idempotent. */
  ended(): void;
}

export function enforceLimits(input: EnforceInput): Enforcement {
  const { limits } = input;
  if (!hasLimits(limits)) return { exitError: () => undefined, ended: () => {} };
  const overhead = sandboxOverhead(input.backend);
  const stopWatchdog = startWatchdog({
    extension: input.name,
    root: input.pid,
    overhead,
    folders: input.folders,
    limits,
    onExceeded: input.onExceeded,
  });
  let cgroup: ExtensionCgroup | undefined;
  let ended = false;
  const needed = neededControllers(limits);
  // Best effort: a host that cannot give a cgroup (v1, no delegation, a refused write) keeps the watchdog and rlimits.
  const attached =
    needed.length === 0
      ? Promise.resolve()
      : (async () => {
          const where = await probeCgroupV2(needed);
          if (!("parent" in where) || ended) return;
          try {
            const made = await createExtensionCgroup(where.parent, input.name, limits, overhead);
            cgroup = made;
            await made.adopt(input.pid);
            if (ended) await made.remove();
          } catch (error) {
            input.logger.warn(
              `[${input.name}] cgroup v2 limits not applied (${(error as Error).message}); the watchdog and rlimits enforce them`,
            );
          }
        })();
  return {
    exitError(exit) {
      if (cgroup && limits.memoryMiB !== undefined && exit.signal === "SIGKILL" && cgroup.oomKills() > 0) {
        return new ExtensionLimitError(input.name, {
          limit: "memoryMiB",
          value: limits.memoryMiB,
          max: limits.memoryMiB,
          mechanism: "cgroup",
        });
      }
      return limitErrorForExit(input.name, exit, limits);
    },
    ended() {
      if (ended) return;
      ended = true;
      stopWatchdog();
      void attached.then(() => cgroup?.remove());
    },
  };
}
