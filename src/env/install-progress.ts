// Install progress: counts read from uv's and pip's own lines, and a tick with the elapsed time while they run.

import type { InstallCounts, ProgressEvent } from "./types.js";

/** A tick comes at least this often while an install runs (every second: "at least every 2 s" with timer slack). */
export const TICK_MS = 1000;

const UNITS: Record<string, number> = {
  B: 1,
  kB: 1e3,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
};
const SIZE = String.raw`\(([\d.]+)\s*(B|kB|KB|MB|GB|KiB|MiB|GiB)\)`;
const UV_DOWNLOAD = new RegExp(String.raw`^\s*Downloading \S+ ${SIZE}`);
const PIP_DOWNLOAD = new RegExp(String.raw`^\s*Downloading \S+ ${SIZE}`);

/** The counts after one installer line (pure: the same line always adds the same). */
export function readInstallerLine(counts: InstallCounts, line: string): InstallCounts {
  let m: RegExpExecArray | null;
  if ((m = /^\s*Resolved (\d+) packages?\b/.exec(line))) return { ...counts, packages: Number(m[1]) };
  if ((m = /^\s*Installed (\d+) packages?\b/.exec(line))) return { ...counts, installed: Number(m[1]) };
  if ((m = UV_DOWNLOAD.exec(line) ?? PIP_DOWNLOAD.exec(line))) {
    const bytes = Math.round(Number(m[1]) * UNITS[m[2]!]!);
    return { ...counts, downloads: (counts.downloads ?? 0) + 1, bytes: (counts.bytes ?? 0) + bytes };
  }
  if (/^Collecting \S/.test(line)) return { ...counts, packages: (counts.packages ?? 0) + 1 };
  if ((m = /^Installing collected packages: (.+)$/.exec(line))) return { ...counts, packages: m[1]!.split(",").length };
  if ((m = /^Successfully installed (.+)$/.exec(line)))
    return { ...counts, installed: m[1]!.trim().split(/\s+/).length };
  return counts;
}

/** "16.0 MiB" */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) [value, unit] = [value / 1024, unit + 1];
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** "12 s, 3 packages resolved, 1 downloaded (16.0 MiB), 3 installed" */
export function describeProgress(elapsedMs: number, counts: InstallCounts): string {
  const parts = [`${(elapsedMs / 1000).toFixed(elapsedMs < 10_000 ? 1 : 0)} s`];
  if (counts.packages !== undefined)
    parts.push(`${counts.packages} package${counts.packages === 1 ? "" : "s"} resolved`);
  if (counts.downloads !== undefined) parts.push(`${counts.downloads} to download (${formatBytes(counts.bytes ?? 0)})`);
  if (counts.installed !== undefined) parts.push(`${counts.installed} installed`);
  return parts.join(", ");
}

/**
 * One install's progress: each installer line becomes an event with the elapsed time and the counts so far, and a
 * `tick` event comes every TICK_MS while the installer is silent (a 700 MB torch wheel downloads without a word).
 */
export class InstallProgress {
  private counts: InstallCounts = {};
  private readonly started = Date.now();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly what: string,
    private readonly emit: (event: ProgressEvent) => void,
  ) {
    this.timer = setInterval(() => this.tick(), TICK_MS);
    // A tick never keeps the host alive on its own.
    this.timer.unref();
  }

  line(line: string): void {
    this.counts = readInstallerLine(this.counts, line);
    this.emit({ stage: "install", message: line, line, elapsedMs: this.elapsed(), counts: { ...this.counts } });
  }

  /** Stops the ticks; a last event sums the install up when it succeeded. */
  stop(succeeded: boolean): void {
    clearInterval(this.timer);
    if (succeeded)
      this.emit({
        stage: "install",
        message: `installed ${this.what} (${describeProgress(this.elapsed(), this.counts)})`,
        elapsedMs: this.elapsed(),
        counts: { ...this.counts },
      });
  }

  private tick(): void {
    try {
      this.emit({
        stage: "install",
        message: `installing ${this.what}: ${describeProgress(this.elapsed(), this.counts)}`,
        elapsedMs: this.elapsed(),
        counts: { ...this.counts },
        tick: true,
      });
    } catch {
      // An onProgress that throws from a timer would crash the host: its tick is lost, the install goes on.
    }
  }

  private elapsed(): number {
    return Date.now() - this.started;
  }
}
