// The soak: many extensions under a restart policy and limits, calls with bytes and tensors in flight, random
// SIGKILLs and limit kills; every call tracked to one end.

import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import {
  createConsoleLogger,
  ExtensionLimitError,
  ExtensionManager,
  PyIsolateError,
  Tensor,
  type Extension,
  type ExtensionOptions,
} from "../src/index.js";
import { describe, descendants, runsMarker, usage, type Usage } from "./resilience-soak-proc.js";
import { POOL_IDLE_MS } from "../src/rpc/bytes-pool.js";

export type { Usage } from "./resilience-soak-proc.js";

/** The only errors a call may end in: the kill's own (a SIGKILL is a crash; a limit's stop is that limit). */
export const ALLOWED_ERRORS: readonly string[] = ["ExtensionCrashedError", "ExtensionLimitError"];
const MARKER = "res_fuzz_soak";

export interface SoakOptions {
  venvRoot: string;
  modulePath: string;
  extensions: number;
  /** How long calls are issued and extensions killed. */
  durationMs: number;
  /** The first part of the run, after which the baseline is taken (the heap and allocator reach their working size). */
  warmupMs: number;
  /**
   * Calls the warm-up must also have made (on a loaded machine 8 s may be a few hundred, short of the working size of
   * V8's young generation), unless half the run has passed.
   */
  warmupCalls?: number;
  /** Calls in flight at once. */
  concurrency: number;
  /** A kill every this many ms, drawn uniformly from the range. */
  killEveryMs: readonly [number, number];
  /** The share of kills done by making an extension pass a limit (pids or memoryMiB) rather than by SIGKILL. */
  limitShare: number;
  /** Extensions (the first ones) that get numpy, so that tensors travel to them. */
  tensorExtensions: number;
  numpy: readonly string[];
  sandbox?: ExtensionOptions["sandbox"];
  log?: (line: string) => void;
}

export interface SoakReport {
  calls: number;
  ok: number;
  /** Rejections by error name (typed ones), "untyped" for anything else. */
  errors: Record<string, number>;
  /** Rejections not in ALLOWED_ERRORS: "name: message" (the first 20). */
  unexpected: string[];
  duplicated: number;
  hanging: number;
  sigkills: number;
  /** Calls made to pass a limit, and how each ended. */
  limitCalls: number;
  limitStops: Record<string, number>;
  /** Limit calls that returned: the limit was not enforced. */
  limitMissed: number;
  restarts: number;
  tensorCalls: number;
  bytesCalls: number;
  servingAfter: number;
  start: Usage;
  end: Usage;
  /** Processes of ours left after the manager closed: "pid state cmdline". */
  orphans: string[];
  memfdsLeft: number;
  elapsedMs: number;
}

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The limits every soak extension runs under, and the two ways a call passes one. */
export const SOAK_LIMITS = { pids: 8, memoryMiB: 384 } as const;
const PASS_PIDS = [12, 0, 20] as const; // 12 children holding nothing: past pids
const PASS_MEMORY = [4, 120, 20] as const; // 4 children of 120 MiB each: past memoryMiB, under pids

export async function runSoak(o: SoakOptions): Promise<SoakReport> {
  const log = o.log ?? (() => {});
  // Children the host had before (tsx's esbuild service in the tests) are not the extensions'.
  const before = new Set(descendants());
  const manager = new ExtensionManager({
    venvRoot: o.venvRoot,
    forwardOutput: false,
    logger: createConsoleLogger("silent"),
  });
  const names = Array.from({ length: o.extensions }, (_, i) => `${MARKER}_${i < o.tensorExtensions ? "t" : "b"}${i}`);
  const pidsSeen = new Set<number>();
  const report: SoakReport = {
    calls: 0,
    ok: 0,
    errors: {},
    unexpected: [],
    duplicated: 0,
    hanging: 0,
    sigkills: 0,
    limitCalls: 0,
    limitStops: {},
    limitMissed: 0,
    restarts: 0,
    tensorCalls: 0,
    bytesCalls: 0,
    servingAfter: 0,
    start: usage(),
    end: usage(),
    orphans: [],
    memfdsLeft: 0,
    elapsedMs: 0,
  };

  log(`loading ${o.extensions} extensions (${o.tensorExtensions} with numpy)`);
  // Extensions come back by policy: never spent in a soak (the policy's own limits are tested elsewhere).
  const exts: Extension[] = await Promise.all(
    names.map((name, i) =>
      manager.load({
        name,
        modulePath: o.modulePath,
        sandbox: o.sandbox,
        limits: { ...SOAK_LIMITS },
        restart: { maxRestarts: 10_000, windowMs: 60_000, backoffMs: 50, queueCalls: true, queueTimeoutMs: 60_000 },
        ...(i < o.tensorExtensions ? { dependencies: [...o.numpy] } : {}),
      }),
    ),
  );
  for (const ext of exts) {
    if (ext.pid !== undefined) pidsSeen.add(ext.pid);
    ext.on("ready", () => void (ext.pid !== undefined && pidsSeen.add(ext.pid)));
    ext.on("restart", () => void report.restarts++);
  }

  const inFlight = new Map<number, Promise<void>>();
  const limitPending = new Set<number>();

  /** Tracks one call to exactly one end; a second settlement would find its id gone (the map holds only calls in flight). */
  function track(call: Promise<unknown>, onError?: (err: unknown) => void, cleanup?: () => void): void {
    const id = ++report.calls;
    const done = call
      .then(
        () => void report.ok++,
        (err: unknown) => {
          const name = err instanceof PyIsolateError ? err.name : "untyped";
          report.errors[name] = (report.errors[name] ?? 0) + 1;
          if (!ALLOWED_ERRORS.includes(name) && report.unexpected.length < 20)
            report.unexpected.push(`${name}: ${String((err as Error)?.message ?? err)}`);
          onError?.(err);
        },
      )
      .finally(() => {
        cleanup?.();
        if (!inFlight.delete(id)) report.duplicated++;
      });
    inFlight.set(id, done);
  }

  function issue(): void {
    const i = Math.floor(Math.random() * o.extensions);
    const ext = exts[i]!;
    const kind = Math.random();
    if (i < o.tensorExtensions && kind < 0.5) {
      report.tensorCalls++;
      const sent = Tensor.from(new Float32Array(1024).fill(1), [32, 32]);
      track(
        ext.call("tensor_sum", [sent]).then((r) => {
          const [sum, doubled] = r as [number, Tensor];
          doubled.release();
          if (sum !== 1024) throw new Error(`tensor_sum returned ${sum}`);
        }),
        undefined,
        () => sent.release(),
      );
    } else if (kind < 0.8) {
      report.bytesCalls++;
      const n = 1 + Math.floor(Math.random() * 256 * 1024);
      track(
        ext.call("nbytes", [new Uint8Array(n)]).then((r) => {
          if (r !== n) throw new Error(`nbytes returned ${String(r)} for ${n}`);
        }),
      );
    } else {
      const value = { n: report.calls, list: [1, "two", null], big: 2n ** 70n };
      track(
        ext.call("echo", [value]).then((r) => {
          if ((r as { n: number }).n !== value.n) throw new Error("echo returned another value");
        }),
      );
    }
  }

  /** Makes extension `i` pass its pids or memory limit: the call must end in the limit's error (or a SIGKILL's). */
  function passLimit(i: number): void {
    report.limitCalls++;
    limitPending.add(i);
    const args = report.limitCalls % 2 === 0 ? PASS_PIDS : PASS_MEMORY;
    track(
      exts[i]!.call("pass_limit", [...args]).then(() => void report.limitMissed++),
      (err) => {
        const key =
          err instanceof ExtensionLimitError ? err.limit : err instanceof PyIsolateError ? err.name : "untyped";
        report.limitStops[key] = (report.limitStops[key] ?? 0) + 1;
      },
      () => limitPending.delete(i),
    );
  }

  /** Nothing in flight, every extension ready, the heap collected: the state the baseline and the end are taken in. */
  async function quiesce(): Promise<void> {
    await Promise.all(inFlight.values());
    for (let n = 0; n < 600 && exts.some((ext) => ext.state !== "ready"); n++) await sleep(100);
    for (let round = 0; round < 3; round++) {
      gc();
      await sleep(200);
    }
  }

  await Promise.all(exts.map((ext) => ext.call("echo", [0])));
  const began = Date.now();
  let stopping = false;
  let paused = false;
  const killer = (async () => {
    while (!stopping) {
      const [lo, hi] = o.killEveryMs;
      await sleep(lo + Math.random() * (hi - lo));
      if (stopping) break;
      if (paused) continue;
      const i = Math.floor(Math.random() * o.extensions);
      const ext = exts[i]!;
      if (ext.pid === undefined || ext.state !== "ready" || limitPending.has(i)) continue;
      if (Math.random() < o.limitShare) {
        passLimit(i);
        continue;
      }
      try {
        process.kill(ext.pid, "SIGKILL");
        report.sigkills++;
      } catch {
        // it died on its own meanwhile
      }
    }
  })();
  let baselined = false;
  let lastLog = began;
  while (Date.now() - began < o.durationMs) {
    const elapsed = Date.now() - began;
    if (!baselined && elapsed >= o.warmupMs && (report.calls >= (o.warmupCalls ?? 0) || elapsed >= o.durationMs / 2)) {
      baselined = true;
      paused = true;
      await quiesce();
      report.start = usage();
      paused = false;
      log(
        `baseline after ${elapsed} ms and ${report.calls} calls: rss ${(report.start.rss / 2 ** 20).toFixed(1)} MiB, heap ${(report.start.heapUsed / 2 ** 20).toFixed(1)} MiB, ${report.start.fds} fds, ${report.start.memfds} memfds`,
      );
    }
    while (inFlight.size < o.concurrency) issue();
    await Promise.race(inFlight.values());
    if (Date.now() - lastLog > 10_000) {
      lastLog = Date.now();
      log(
        `${Math.round((lastLog - began) / 1000)} s: ${report.calls} calls, ${report.ok} ok, ${report.sigkills} SIGKILLs, ${report.limitCalls} limit calls, ${report.restarts} restarts, rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(1)} MiB, heapTotal ${(process.memoryUsage().heapTotal / 2 ** 20).toFixed(1)} MiB`,
      );
    }
  }
  stopping = true;
  await killer;
  // Every call must settle on its own: a bounded wait, then whatever is left is hanging.
  await Promise.race([Promise.all(inFlight.values()), sleep(90_000)]);
  report.hanging = inFlight.size;
  report.elapsedMs = Date.now() - began;
  await quiesce();

  // Killed extensions came back by policy: each one serves again.
  const after = await Promise.allSettled(exts.map((ext) => ext.call("echo", ["after"], { timeoutMs: 30_000 })));
  report.servingAfter = after.filter((r) => r.status === "fulfilled" && r.value === "after").length;
  // The bytes pools keep their memfds (and the host's mappings of them) until idle for POOL_IDLE_MS: held, not leaked.
  await sleep(2 * POOL_IDLE_MS + 200);
  await quiesce();
  report.end = usage();

  await manager.close();
  const ours = (): number[] => descendants().filter((pid) => !before.has(pid));
  for (let i = 0; i < 50 && ours().length > 0; i++) await sleep(100);
  report.orphans = [...new Set([...ours(), ...[...pidsSeen].filter((pid) => runsMarker(pid, MARKER))])].map(describe);
  gc();
  report.memfdsLeft = usage().memfds;
  log(`done: ${JSON.stringify(report)}`);
  return report;
}
