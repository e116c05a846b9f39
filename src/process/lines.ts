// Splits a byte stream into text lines in linear time; a line longer than the cap is delivered in pieces.

import { StringDecoder } from "node:string_decoder";

/** Default longest line kept whole (limits.maxLineChars): a child that never writes a newline costs bounded memory. */
export const DEFAULT_MAX_LINE_CHARS = 64 * 1024;

/**
 * Keeps a partial last line (and partial UTF-8) until its newline comes. Each chunk is scanned once and the
 * partial line is kept as a list of pieces, joined only when the line ends, so output without newlines costs
 * linear time. A line that reaches `maxLineChars` is delivered at once as a piece of exactly that many characters
 * (one fewer when that would split a surrogate pair), and the rest follows as the next line: nothing is dropped.
 */
export class LineSplitter {
  private pieces: string[] = [];
  private partialChars = 0;
  private decoder = new StringDecoder("utf8");
  /** The partial line was dropped by `discard`: the rest of it, up to its newline, goes too. */
  private discarding = false;
  private readonly maxLineChars: number;

  constructor(
    private readonly onLine: (line: string) => void,
    maxLineChars = DEFAULT_MAX_LINE_CHARS,
  ) {
    if (!Number.isSafeInteger(maxLineChars) || maxLineChars < 2)
      throw new RangeError(`maxLineChars must be an integer of at least 2, got ${maxLineChars}`);
    this.maxLineChars = maxLineChars;
  }

  push(chunk: Buffer): void {
    let text = this.decoder.write(chunk);
    if (this.discarding) {
      const newline = text.indexOf("\n");
      if (newline === -1) return;
      this.discarding = false;
      text = text.slice(newline + 1);
    }
    let start = 0;
    while (start < text.length) {
      const newline = text.indexOf("\n", start);
      const end = newline === -1 ? text.length : newline;
      start = this.take(text, start, end);
      if (start === newline) {
        this.endLine();
        start += 1;
      }
    }
  }

  /**
   * Drops `chunk` unread (no string is made of it) and says how many lines it ended: a newline scan of the bytes,
   * for a stream past its budget. The partial line before it is dropped, and so is the rest of the last line.
   */
  discard(chunk: Buffer): number {
    let newlines = 0;
    for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) newlines += 1;
    if (chunk.length === 0) return 0;
    // A line being dropped was counted when its dropping began: its newline is not one more.
    let lines = this.discarding && newlines > 0 ? newlines - 1 : newlines;
    const endsOpen = chunk[chunk.length - 1] !== 10;
    // The line left open at the end is counted now, unless it is the one already counted.
    if (endsOpen && !(this.discarding && newlines === 0)) lines += 1;
    this.pieces = [];
    this.partialChars = 0;
    this.decoder = new StringDecoder("utf8");
    this.discarding = endsOpen;
    return lines;
  }

  flush(): void {
    if (this.discarding) {
      this.discarding = false;
      this.pieces = [];
      this.partialChars = 0;
      this.decoder.end();
      return;
    }
    const rest = this.decoder.end();
    if (rest) this.take(rest, 0, rest.length);
    if (this.partialChars > 0) this.onLine(this.pieces.join(""));
    this.pieces = [];
    this.partialChars = 0;
  }

  /** Adds text[start, end) (no newline in it) to the partial line, cutting pieces at the cap; returns `end`. */
  private take(text: string, start: number, end: number): number {
    while (end - start > this.maxLineChars - this.partialChars) {
      let cut = start + this.maxLineChars - this.partialChars;
      if (isHighSurrogate(text.charCodeAt(cut - 1)) && cut - 1 > start) cut -= 1;
      this.pieces.push(text.slice(start, cut));
      this.onLine(this.pieces.join(""));
      this.pieces = [];
      this.partialChars = 0;
      start = cut;
    }
    if (end > start) {
      this.pieces.push(text.slice(start, end));
      this.partialChars += end - start;
    }
    return end;
  }

  private endLine(): void {
    const line = this.pieces.length === 1 ? this.pieces[0]! : this.pieces.join("");
    this.pieces = [];
    this.partialChars = 0;
    this.onLine(line.endsWith("\r") ? line.slice(0, -1) : line);
  }
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}
