// Real extensions flooding stdout, stderr and events: drops are counted exactly, and the host's event loop stays free.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { createConsoleLogger, type DroppedOutput, type Extension, type ExtensionOptions } from "../src/index.js";
import { fixture, makeManager, waitFor } from "./helpers.js";

const warnings: string[] = [];
const logger = { ...createConsoleLogger("silent"), warn: (m: string) => warnings.push(m) };
const manager = makeManager({ logger });
after(() => manager.close());

const BACKENDS: { label: string; sandbox: ExtensionOptions["sandbox"] }[] = [
  { label: "under bwrap", sandbox: { backend: "bwrap" } },
  { label: "under Landlock", sandbox: { backend: "landlock" } },
  { label: "with the sandbox disabled", sandbox: { mode: "disabled" } },
];

/** Counts what reaches the listeners of `stream` and what the gate reports dropped for it. */
function tally(ext: Extension, stream: "stdout" | "stderr" | "events") {
  const seen = { delivered: 0, dropped: 0, reports: 0 };
  const event = stream === "events" ? "tick" : stream;
  ext.on(event, () => (seen.delivered += 1));
  ext.on("dropped", (r: DroppedOutput) => {
    if (r.stream !== stream) return;
    seen.dropped += r.lines;
    seen.reports += 1;
  });
  return seen;
}

async function burst(ext: Extension, stream: "stdout" | "stderr" | "events", n: number): Promise<void> {
  if (stream === "events") await ext.call("emit_events", [n]);
  else await ext.call("print_lines", [stream, n]);
}

const N = 5000;

for (const { label, sandbox } of BACKENDS) {
  test(`a burst past the stdout budget is cut to it and every line is delivered or counted dropped, ${label}`, async () => {
    const ext = await manager.load({
      name: `res_floods_out_${sandbox?.backend ?? "none"}`,
      modulePath: fixture("res_floods_flood"),
      sandbox,
      output: { linesPerSecond: 100, burst: 100 },
    });
    try {
      const seen = tally(ext, "stdout");
      await burst(ext, "stdout", N);
      await waitFor(() => seen.delivered + seen.dropped === N, 10_000, "every line delivered or counted");
      assert.ok(
        seen.delivered >= 100 && seen.delivered < 1000,
        `delivered ${seen.delivered}: the burst, plus the rate while it lasted`,
      );
      assert.ok(seen.dropped > N - 1000);
      assert.ok(warnings.some((w) => w.includes(ext.name) && w.includes("stdout passes its output budget")));
    } finally {
      await ext.stop();
    }
  });
}

for (const stream of ["stderr", "events"] as const) {
  test(`a burst past the ${stream} budget is cut to it, and within the budget nothing is dropped`, async () => {
    const cut = await manager.load({
      name: `res_floods_cut_${stream}`,
      modulePath: fixture("res_floods_flood"),
      output: { linesPerSecond: 100, burst: 100 },
    });
    const free = await manager.load({
      name: `res_floods_free_${stream}`,
      modulePath: fixture("res_floods_flood"),
      output: { linesPerSecond: 1_000_000, burst: 1_000_000 },
    });
    try {
      const limited = tally(cut, stream);
      const control = tally(free, stream);
      await Promise.all([burst(cut, stream, N), burst(free, stream, N)]);
      await waitFor(
        () => limited.delivered + limited.dropped === N && control.delivered === N,
        10_000,
        "every line delivered or counted",
      );
      assert.ok(limited.delivered < 1000, `delivered ${limited.delivered} of ${N}`);
      assert.ok(limited.reports >= 1);
      await waitFor(() => true, 1500); // a report would come within a second
      assert.equal(control.dropped, 0, "the same burst within the budget loses nothing");
      assert.equal(control.reports, 0);
    } finally {
      await Promise.all([cut.stop(), free.stop()]);
    }
  });
}

test("a Python event named dropped is refused: only the host reports drops", async () => {
  const ext = await manager.load({ name: "res_floods_fake", modulePath: fixture("res_floods_flood") });
  try {
    const fakes: unknown[] = [];
    ext.on("dropped", (r) => fakes.push(r));
    assert.equal(await ext.call("emit_named", ["dropped", { stream: "stdout", lines: 1, bytes: 1 }]), true);
    await ext.call("ping");
    assert.deepEqual(fakes, []);
  } finally {
    await ext.stop();
  }
});

test("the host's event loop stays under 50 ms of delay (p99) while one extension floods stdout, stderr and events and another is called", async () => {
  const flooder = await manager.load({ name: "res_floods_flooder", modulePath: fixture("res_floods_flood") });
  const worker = await manager.load({ name: "res_floods_worker", modulePath: fixture("res_floods_flood") });
  try {
    const dropped = { stdout: 0, stderr: 0, events: 0 };
    flooder.on("dropped", (r: DroppedOutput) => (dropped[r.stream] += r.lines));
    let delivered = 0;
    for (const name of ["stdout", "stderr", "tick"]) flooder.on(name, () => (delivered += 1));
    // Sampled every millisecond, so that a sample overstates the delay by 1 ms at most. The flood runs at the lowest
    // CPU priority: on this 2-core machine its threads would otherwise take the host's core from the scheduler, and
    // this test is about what the flood's volume costs the host's event loop, not about CPU shares (limits do those).
    // Other processes on a shared machine (the rest of the suite, other jobs) deschedule the host now and then: up to
    // three 3 s windows are measured, and the bound must hold in one of them; each window's figures are printed. The
    // bound is on the 99th percentile: a single peak is the scheduler's (an idle host alone peaks at 9-34 ms here),
    // the percentile is what the flood costs the loop.
    const windows: string[] = [];
    let best = Infinity;
    for (let window = 0; window < 3 && best >= 50; window++) {
      const histogram = monitorEventLoopDelay({ resolution: 1 });
      await flooder.call("flood", [3, 19]);
      histogram.enable();
      const start = Date.now();
      let calls = 0;
      while (Date.now() - start < 3000) {
        assert.equal(await worker.call("ping", [calls]), calls);
        calls += 1;
      }
      histogram.disable();
      const maxMs = histogram.max / 1e6;
      best = Math.min(best, histogram.percentile(99) / 1e6);
      windows.push(`${calls} calls, max ${maxMs.toFixed(1)} ms, p99 ${(histogram.percentile(99) / 1e6).toFixed(1)} ms`);
      assert.ok(calls > 50, `the other extension answered ${calls} calls in 3 s`);
    }
    await waitFor(() => dropped.stdout > 0 && dropped.stderr > 0 && dropped.events > 0, 5000, "drops on every stream");
    console.log(
      `flood: ${delivered} lines/events delivered, dropped ${JSON.stringify(dropped)}; event-loop delay per window: ${windows.join("; ")}`,
    );
    assert.ok(best < 50, `event-loop delay p99 was ${best.toFixed(1)} ms in the best window`);
  } finally {
    await Promise.all([flooder.stop(), worker.stop()]);
  }
});
