// Memory figures of a process and of the machine, read from /proc (Linux only).

import { readFileSync, writeFileSync } from "node:fs";

/** One `field: N kB` line of /proc/<pid>/<file> (status, smaps_rollup), in KiB. */
function procKiB(pid, field, file = "status") {
  const text = readFileSync(`/proc/${pid}/${file}`, "ascii");
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text);
  if (!match) throw new Error(`no ${field} in /proc/${pid}/${file}`);
  return Number(match[1]);
}

/** Resident set size now. */
export function rssMiB(pid) {
  return procKiB(pid, "VmRSS") / 1024;
}

/** Peak resident set size (VmHWM) since the process started or since resetPeakRss. */
export function peakRssMiB(pid) {
  return procKiB(pid, "VmHWM") / 1024;
}

/** Resets VmHWM to the current RSS (writing 5 to clear_refs, Linux 4.0+), so a peak can be taken per case. */
export function resetPeakRss(pid) {
  writeFileSync(`/proc/${pid}/clear_refs`, "5");
}

/** Proportional set size (shared pages split among their users), from smaps_rollup. */
export function pssMiB(pid) {
  return procKiB(pid, "Pss", "smaps_rollup") / 1024;
}

/** The parent's pid, from /proc/<pid>/stat (the field after the command's closing parenthesis). */
export function parentPid(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "ascii");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

/** MemAvailable of the machine, in bytes. */
export function memAvailableBytes() {
  const match = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync("/proc/meminfo", "ascii"));
  if (!match) throw new Error("no MemAvailable in /proc/meminfo");
  return Number(match[1]) * 1024;
}
