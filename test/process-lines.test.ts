// The output line splitter: whole lines, pieces at the cap, partial UTF-8, and linear time without newlines.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DEFAULT_MAX_LINE_CHARS, LineSplitter } from "../src/process/lines.js";

function split(chunks: (string | Buffer)[], max?: number): string[] {
  const lines: string[] = [];
  const splitter = new LineSplitter((line) => lines.push(line), max);
  for (const chunk of chunks) splitter.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
  splitter.flush();
  return lines;
}

describe("LineSplitter", () => {
  test("splits on newlines across chunks, drops a trailing \\r, keeps empty lines and flushes the rest", () => {
    assert.deepEqual(split(["ab\ncd", "ef\r\n\n", "gh"]), ["ab", "cdef", "", "gh"]);
  });

  test("keeps a UTF-8 character split between chunks whole", () => {
    const bytes = Buffer.from("é€😀\n");
    assert.deepEqual(split([bytes.subarray(0, 1), bytes.subarray(1, 4), bytes.subarray(4, 7), bytes.subarray(7)]), [
      "é€😀",
    ]);
  });

  test("a line of exactly the cap stays whole; a longer one comes in pieces of the cap, nothing dropped", () => {
    assert.deepEqual(split(["abcd\n"], 4), ["abcd"]);
    assert.deepEqual(split(["abcdefghij\n"], 4), ["abcd", "efgh", "ij"]);
    assert.deepEqual(split(["ab", "cdef", "ghij", "k\n"], 4), ["abcd", "efgh", "ijk"]);
  });

  test("a cut never splits a surrogate pair", () => {
    assert.deepEqual(split(["abc😀d\n"], 4), ["abc", "😀d"]);
  });

  test(`the default cap is ${DEFAULT_MAX_LINE_CHARS} characters`, () => {
    const lines = split(["x".repeat(DEFAULT_MAX_LINE_CHARS * 2 + 1)]);
    assert.deepEqual(
      lines.map((l) => l.length),
      [DEFAULT_MAX_LINE_CHARS, DEFAULT_MAX_LINE_CHARS, 1],
    );
  });

  test("32 MiB without a newline in 64 KiB reads takes linear time (the old split took 6 s of CPU)", (t) => {
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let chars = 0;
    const splitter = new LineSplitter((line) => (chars += line.length));
    const cpu = process.cpuUsage();
    for (let i = 0; i < 512; i++) splitter.push(chunk);
    splitter.flush();
    const used = process.cpuUsage(cpu);
    const ms = (used.user + used.system) / 1000;
    t.diagnostic(`32 MiB: ${ms.toFixed(0)} ms of CPU`);
    assert.equal(chars, 32 * 1024 * 1024);
    assert.ok(ms < 1000, `took ${ms} ms`);
  });

  test("refuses a cap below 2", () => {
    assert.throws(() => new LineSplitter(() => {}, 1), RangeError);
  });
});
