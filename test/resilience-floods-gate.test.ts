// The flood gate's rules on a fake clock: budgets per stream, refill, byte budget, reports, and no timer left.

import { test } from "node:test";
import assert from "node:assert/strict";
import { FloodGate, type DroppedOutput } from "../src/output/flood-gate.js";
import { TokenBucket } from "../src/output/token-bucket.js";
import { resolveOutputLimits } from "../src/output/output-limits.js";
import { ConfigError } from "../src/errors.js";

function gate(limits: { linesPerSecond: number; bytesPerSecond: number; burst: number }) {
  let now = 0;
  const reports: DroppedOutput[] = [];
  const warned: string[] = [];
  const g = new FloodGate(limits, {
    onDropped: (r) => reports.push(r),
    onFirstDrop: (s) => warned.push(s),
    now: () => now,
  });
  return { g, reports, warned, advance: (ms: number) => (now += ms) };
}

test("a token bucket passes its burst at once, then only its rate", () => {
  const bucket = new TokenBucket(10, 5, 0);
  assert.equal([1, 2, 3, 4, 5, 6].filter(() => bucket.take(1, 0)).length, 5);
  assert.equal(bucket.take(1, 50), false, "half a token after 50 ms");
  assert.equal(bucket.take(1, 100), true, "one token after 100 ms at 10/s");
  assert.equal(bucket.available(10_000), 5, "never more than its capacity");
});

test("a stream past its line budget is dropped and counted, the other streams keep their own budget", () => {
  const { g, reports, warned } = gate({ linesPerSecond: 10, bytesPerSecond: 1_000_000, burst: 3 });
  const passed = Array.from({ length: 10 }, () => g.admit("stdout", 10)).filter(Boolean).length;
  assert.equal(passed, 3);
  assert.equal(g.admit("stderr", 10), true, "stderr is not charged for stdout's lines");
  assert.equal(g.admit("events", 10), true);
  assert.deepEqual(warned, ["stdout"], "one warning, for the stream that dropped");
  g.close();
  assert.deepEqual(reports, [{ stream: "stdout", lines: 7, bytes: 70 }]);
});

test("the byte budget drops long lines that the line budget would pass", () => {
  // 1000 B/s with a burst of 10 lines at 10 lines/s: the byte bucket holds 1000 bytes.
  const { g, reports } = gate({ linesPerSecond: 10, bytesPerSecond: 1000, burst: 10 });
  assert.equal(g.admit("stderr", 600), true);
  assert.equal(g.admit("stderr", 600), false);
  assert.equal(g.admit("stderr", 300), true, "a refused line spent no budget");
  g.close();
  assert.deepEqual(reports, [{ stream: "stderr", lines: 1, bytes: 600 }]);
});

test("a line or event larger than the whole byte budget passes when the budget is full, and is then owed", () => {
  const { g, reports, advance } = gate({ linesPerSecond: 10, bytesPerSecond: 1000, burst: 10 });
  assert.equal(g.admit("events", 5000), true, "never starved: the bucket (1000 bytes) was full");
  assert.equal(g.admit("events", 1), false, "the stream owes 4000 bytes");
  assert.equal(g.exhausted("events"), true);
  advance(4000);
  assert.equal(g.admit("events", 1), false, "paid back to zero, still nothing to spend");
  advance(10);
  assert.equal(g.admit("events", 1), true);
  assert.equal(g.admit("events", 5000), false, "a big one waits for a full bucket again");
  g.close();
  assert.deepEqual(reports, [{ stream: "events", lines: 3, bytes: 5002 }]);
});

test("the budget refills with time, and a report sums the drops since the last one", () => {
  const { g, reports, warned, advance } = gate({ linesPerSecond: 100, bytesPerSecond: 1_000_000, burst: 1 });
  assert.equal(g.admit("events", 1), true);
  assert.equal(g.admit("events", 1), false);
  advance(10);
  assert.equal(g.admit("events", 1), true, "one line a 10 ms at 100 lines/s");
  assert.equal(g.admit("events", 1), false);
  g.close();
  assert.deepEqual(reports, [{ stream: "events", lines: 2, bytes: 2 }]);
  assert.equal(warned.length, 1, "the warning is said once, however many drops");
  assert.equal(g.admit("events", 1), false, "a closed gate passes nothing");
  g.close();
  assert.equal(reports.length, 1, "close is idempotent and reports nothing twice");
});

test("drops are reported once a second while they last, and a closed gate's timer never fires", (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const { g, reports, advance } = gate({ linesPerSecond: 1, bytesPerSecond: 1000, burst: 1 });
  g.admit("stdout", 1);
  g.admit("stdout", 5);
  t.mock.timers.tick(999);
  assert.deepEqual(reports, []);
  t.mock.timers.tick(1);
  assert.deepEqual(reports, [{ stream: "stdout", lines: 1, bytes: 5 }]);
  t.mock.timers.tick(5000);
  assert.equal(reports.length, 1, "no report without new drops");
  g.admit("stdout", 2);
  g.close();
  assert.deepEqual(reports[1], { stream: "stdout", lines: 1, bytes: 2 }, "close reports what was pending");
  t.mock.timers.tick(5000);
  assert.equal(reports.length, 2, "the timer armed by the last drop was cleared by close");
  advance(0);
});

test("the output option names the key that is wrong", () => {
  assert.deepEqual(resolveOutputLimits(undefined), { linesPerSecond: 2000, bytesPerSecond: 1048576, burst: 4000 });
  assert.equal(resolveOutputLimits({ burst: 7 }).burst, 7);
  for (const [value, key] of [
    [{ linesPerSecond: 0 }, "output.linesPerSecond"],
    [{ burst: 1.5 }, "output.burst"],
    [{ bytesPerSecond: "1" }, "output.bytesPerSecond"],
    [{ lines: 1 }, "output.lines"],
    [[], "output"],
    ["x", "output"],
  ] as const) {
    assert.throws(
      () => resolveOutputLimits(value),
      (e: unknown) => e instanceof ConfigError && e.key === key,
      JSON.stringify(value),
    );
  }
});

test("a splitter that discards chunks counts each line it drops once, however chunks cut them", async () => {
  const { LineSplitter } = await import("../src/process/lines.js");
  const lines: string[] = [];
  const s = new LineSplitter((l) => lines.push(l), 80);
  s.push(Buffer.from("keep 1\npart"));
  assert.equal(s.discard(Buffer.from("ial\nb\nc")), 3, "the partial line, b, and c left open");
  assert.equal(s.discard(Buffer.from("cc")), 0, "c is already counted");
  assert.equal(s.discard(Buffer.from("c\nd")), 1, "c ends, d begins");
  s.push(Buffer.from("dd\nkeep 2\n"));
  s.push(Buffer.from("open"));
  s.flush();
  assert.deepEqual(lines, ["keep 1", "keep 2", "open"]);
});
