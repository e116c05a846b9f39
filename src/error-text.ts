// Pure helpers that keep error messages short and reason-first; the full text stays in the error's fields.

/** No error message is longer than this; what does not fit is in the error's fields (output, stderrTail, ...). */
export const MAX_MESSAGE_CHARS = 500;
/** One quoted line (of an installer's or an extension's output) at most this long inside a message. */
const MAX_LINE_CHARS = 200;

/** `text` cut to `max` characters, saying how much was left out. */
export function boundText(text: string, max = MAX_MESSAGE_CHARS): string {
  if (text.length <= max) return text;
  const note = ` … (${text.length - max} more characters)`;
  return `${text.slice(0, Math.max(0, max - note.length))}${note}`;
}

/**
 * `head`, then as many of the LAST `lines` as fit in `max` characters (the end of an output says what went wrong),
 * each line indented and cut to MAX_LINE_CHARS, after "(N earlier lines)" when some were left out.
 */
export function headWithLastLines(head: string, lines: readonly string[], max = MAX_MESSAGE_CHARS): string {
  return headAndTail(head, lines, max, "  ");
}

/**
 * A message cut to `max`: one line is cut at its end; several keep the first (the reason) and the last lines that
 * fit (a traceback's or a remedy's end), so that a wrapped message (a load error around a crash) keeps both ends.
 */
export function boundMessage(text: string, max = MAX_MESSAGE_CHARS): string {
  if (text.length <= max) return text;
  const [first, ...rest] = text.split("\n");
  if (rest.length === 0) return boundText(first!, max);
  return headAndTail(boundText(first!, max / 2), rest, max, "");
}

function headAndTail(head: string, lines: readonly string[], max: number, indent: string): string {
  const kept: string[] = [];
  let size = head.length;
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = `${indent}${boundText(lines[i]!.trimEnd(), MAX_LINE_CHARS)}`;
    if (size + line.length + 1 > max - 24) break;
    kept.unshift(line);
    size += line.length + 1;
  }
  const skipped = lines.length - kept.length;
  if (kept.length === 0) return boundText(head, max);
  return [head, ...(skipped > 0 ? [`${indent}(${skipped} earlier lines)`] : []), ...kept].join("\n");
}

// uv: "  × No solution found ...", "error: ..."; pip: "ERROR: ...". Box-drawing continuation lines follow uv's.
const REASON_LINE = /^\s*(?:×|error:|ERROR:)\s*(.+)$/;
const CONTINUATION = /^\s*(?:╰─▶|├─▶|│|cause:)\s*(.+)$/;

/**
 * The installer's own one-line reason for a failure, from its output lines: uv's "× No solution found when
 * resolving dependencies: Because ..." (with its first continuation line), pip's last "ERROR: ..." line.
 */
export function installerReason(lines: readonly string[]): string | undefined {
  let reason: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const match = REASON_LINE.exec(lines[i]!);
    if (!match) continue;
    let text = match[1]!.trim();
    const next = lines[i + 1] === undefined ? undefined : CONTINUATION.exec(lines[i + 1]!);
    if (next) text = `${text.replace(/:$/, "")}: ${next[1]!.trim()}`;
    // uv's first line is its reason; pip says the most precise thing last.
    if (lines[i]!.includes("×")) return boundText(text, MAX_LINE_CHARS * 2);
    reason = text;
  }
  return reason === undefined ? undefined : boundText(reason, MAX_LINE_CHARS * 2);
}
