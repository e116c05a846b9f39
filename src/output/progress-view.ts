// The CLI's view of environment progress on stderr: a progress bar on a terminal, plain lines otherwise.

import { Presets, SingleBar } from "cli-progress";
import type { ProgressEvent } from "../env/types.js";
import { formatBytes } from "../env/install-progress.js";

export interface ProgressView {
  onProgress(event: ProgressEvent): void;
  /** Ends the bar (if any), leaving the terminal's line as it should be. */
  stop(): void;
}

/** Plain lines repeat a silent install's tick this often, so a log shows it is alive without a line a second. */
const PLAIN_TICK_MS = 2000;
const BAR_LINE_CHARS = 40;

/** A bar when `stream` is a terminal, plain lines when it is a pipe or a file (CI logs, `2> log`). */
export function createProgressView(stream: NodeJS.WriteStream = process.stderr): ProgressView {
  return stream.isTTY ? barView(stream) : lineView(stream);
}

/** Each stage message as `pyisolate: ...`, each installer line as `  | ...`, a tick when 2 s passed without a line. */
export function lineView(stream: Pick<NodeJS.WritableStream, "write">): ProgressView {
  let lastWriteMs = 0;
  return {
    onProgress(event) {
      // Warnings are the logger's to say (once).
      if (event.warning) return;
      const elapsed = event.elapsedMs ?? 0;
      if (event.tick && elapsed - lastWriteMs < PLAIN_TICK_MS) return;
      lastWriteMs = elapsed;
      stream.write(event.line !== undefined ? `  | ${event.line}\n` : `pyisolate: ${event.message}\n`);
    },
    stop() {},
  };
}

/** Install events drive one bar (packages installed of resolved, bytes, the installer's last line); others are lines. */
function barView(stream: NodeJS.WriteStream): ProgressView {
  let bar: SingleBar | undefined;
  const stopBar = () => {
    bar?.stop();
    bar = undefined;
  };
  return {
    onProgress(event) {
      if (event.warning) return;
      if (event.stage !== "install" || event.elapsedMs === undefined) {
        stopBar();
        stream.write(`pyisolate: ${event.message}\n`);
        return;
      }
      const counts = event.counts ?? {};
      const total = Math.max(counts.packages ?? 1, counts.installed ?? 0, 1);
      const payload = {
        bytes: counts.bytes === undefined ? "" : formatBytes(counts.bytes),
        line: (event.line ?? "").trim().slice(0, BAR_LINE_CHARS),
      };
      if (!bar) {
        bar = new SingleBar(
          {
            stream,
            hideCursor: true,
            barsize: 24,
            etaBuffer: 10,
            format: "installing [{bar}] {value}/{total} packages {bytes} | {duration}s | {line}",
          },
          Presets.shades_classic,
        );
        bar.start(total, counts.installed ?? 0, payload);
        return;
      }
      bar.setTotal(total);
      bar.update(counts.installed ?? 0, payload);
    },
    stop: stopBar,
  };
}
