// Splits a byte stream into text lines, keeping a partial last line (and partial UTF-8) until complete.

import { StringDecoder } from "node:string_decoder";

export class LineSplitter {
  private partial = "";
  private readonly decoder = new StringDecoder("utf8");
  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: Buffer): void {
    const lines = (this.partial + this.decoder.write(chunk)).split("\n");
    this.partial = lines.pop() ?? "";
    for (const line of lines) this.onLine(line.endsWith("\r") ? line.slice(0, -1) : line);
  }

  flush(): void {
    const rest = this.partial + this.decoder.end();
    if (rest) this.onLine(rest);
    this.partial = "";
  }
}
