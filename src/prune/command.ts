// `pyisolate prune`: dry run by default; --delete removes what no kept extension or shared runtime uses.

import { ConfigError } from "../errors.js";
import { formatPrune } from "./format.js";
import { applyPrune, planPrune } from "./plan.js";

export const PRUNE_USAGE = `       pyisolate prune [--venv-root DIR] [--keep NAME]... [--keep-shared NAME]... [--unused-for DAYS]
                 [--delete | --dry-run] [--json]

prune lists the venvs, crashed builds, install caches and state files under the venv root that no kept
extension (--keep, the names the application loads) or shared runtime (--keep-shared) uses, with sizes;
--delete removes them. Venvs being built or used by a running process are kept; nothing outside the
venv root is touched and no symlink is followed. --unused-for DAYS also keeps any environment built or
loaded within DAYS days.`;

export interface PruneFlags {
  "venv-root"?: string;
  keep?: string[];
  "keep-shared"?: string[];
  "unused-for"?: string;
  delete?: boolean;
  "dry-run"?: boolean;
  json?: boolean;
}

/** Runs the command; returns the exit code. Output goes to stdout (the report is the command's data). */
export async function runPrune(flags: PruneFlags, write: (text: string) => void): Promise<number> {
  if (flags.delete && flags["dry-run"])
    throw new ConfigError("--delete and --dry-run contradict each other: pick one", { key: "delete" });
  const days = flags["unused-for"] === undefined ? undefined : Number(flags["unused-for"]);
  if (days !== undefined && !(Number.isFinite(days) && days >= 0)) {
    throw new ConfigError(
      `--unused-for takes a number of days, 0 or more, got ${JSON.stringify(flags["unused-for"])}`,
      { key: "unused-for" },
    );
  }
  const plan = await planPrune({
    venvRoot: flags["venv-root"] ?? ".venvs",
    keep: flags.keep,
    keepShared: flags["keep-shared"],
    unusedForDays: days,
  });
  const removed = flags.delete ? await applyPrune(plan) : undefined;
  if (flags.json) {
    write(
      `${JSON.stringify({ venvRoot: plan.venvRoot, dryRun: !flags.delete, remove: removed ?? plan.remove, skipped: plan.skipped, bytes: (removed ?? plan.remove).reduce((s, r) => s + r.bytes, 0) }, null, 2)}\n`,
    );
  } else write(`${formatPrune(plan, removed)}\n`);
  return 0;
}
