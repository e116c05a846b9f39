// Pure: a prune plan as the lines `pyisolate prune` prints, sizes in binary units.

import type { PlannedRemoval, PrunePlan } from "./plan.js";

export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** One line per entry, then the total; `done` lists what was removed (a real run), else what would be. */
export function formatPrune(plan: PrunePlan, done?: PlannedRemoval[]): string {
  const items = done ?? plan.remove;
  const verb = done ? "removed" : "would remove";
  const lines = items.map(
    (item) => `${verb} ${formatBytes(item.bytes).padStart(10)}  ${item.kind.padEnd(5)}  ${item.path}`,
  );
  for (const skip of plan.skipped) lines.push(`kept     ${"".padStart(10)}  ${skip.path}: ${skip.reason}`);
  const total = items.reduce((sum, item) => sum + item.bytes, 0);
  if (items.length === 0) lines.push(`nothing to remove in ${plan.venvRoot}`);
  else
    lines.push(
      `${done ? "freed" : "would free"} ${formatBytes(total)} in ${items.length} entries of ${plan.venvRoot}${done ? "" : " (run again with --delete to remove them)"}`,
    );
  return lines.join("\n");
}
