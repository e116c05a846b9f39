// The soak: many extensions, calls with bytes and tensors in flight, random SIGKILLs; every call tracked to one end.

import { readdirSync, readlinkSync, readFileSync } from "node:fs";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { createConsoleLogger, ExtensionManager, PyIsolateError, Tensor, type Extension, type ExtensionOptions } from "../src/index.js";

export interface SoakOptions {
  venvRoot: string;
  modulePath: string;
  extensions: number;
  /** How long calls are issued and extensions killed. */
  durationMs: number;
  /** The first part of the run, after which the baseline is taken (the heap and allocator reach their working size). */
  warmupMs: number;
  /** Calls in flight at once. */
  concurrency: number;
  /** A SIGKILL every this many ms, drawn uniformly from the range. */
  killEveryMs: readonly [number, number];
  /** Extensions (the first ones) that get numpy, so that tensors travel to them. */
  tensorExtensions: number;
  numpy: readonly string[];
  sandbox?: ExtensionOptions["sandbox"];
  log?: (line: string) => void;
}

export interface SoakReport {
  calls: number;
  ok: number;
  /** Typed rejections by error name. */
  typed: Record<string, number>;
  untyped: string[];
  duplicated: number;
  hanging: number;
  kills: number;
  reloads: number;
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

export interface Usage {
  rss: number;
  heapUsed: number;
  external: number;
  fds: number;
  memfds: number;
}

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

function usage(): Usage {
  const fds = readdirSync("/proc/self/fd");
  let memfds = 0;
  for (const fd of fds) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith("/memfd:")) memfds++;
    } catch {
      // closed while listing
    }
  }
  const memory = process.memoryUsage();
  return { rss: memory.rss, heapUsed: memory.heapUsed, external: memory.external, fds: fds.length, memfds };
}

/** Every process whose ancestry leads to this one (the extensions, their sandboxes and children). */
export function descendants(root = process.pid): number[] {
  const parent = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      parent.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // gone
    }
  }
  const out: number[] = [];
  for (const pid of parent.keys()) {
    for (let p = parent.get(pid); p !== undefined && p > 1; p = parent.get(p)) {
      if (p === root) {
        out.push(pid);
        break;
      }
    }
  }
  return out;
}

function describe(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return `${pid} ${stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3)} ${readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").slice(0, 200)}`;
  } catch {
    return `${pid} gone`;
  }
}

/** Is this pid (a zombie counts: nobody reaped it) still one of ours, not a reuse of the number? */
function isExtensionProcess(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("res_fuzz_soak");
  } catch {
    return false;
  }
}

export async function runSoak(o: SoakOptions): Promise<SoakReport> {
  const log = o.log ?? (() => {});
  // Children the host had before (tsx's esbuild service in the tests) are not the extensions'.
  const before = new Set(descendants());
  const manager = new ExtensionManager({ venvRoot: o.venvRoot, forwardOutput: false, logger: createConsoleLogger("silent") });
  const names = Array.from({ length: o.extensions }, (_, i) => `res_fuzz_soak_${i < o.tensorExtensions ? "t" : "b"}${i}`);
  const optionsOf = (i: number): ExtensionOptions => ({
    name: names[i]!, modulePath: o.modulePath, sandbox: o.sandbox,
    ...(i < o.tensorExtensions ? { dependencies: [...o.numpy] } : {}),
  });
  /** Each extension as it is now, or its reload in progress: calls made while it comes back wait for it. */
  const current: Promise<Extension>[] = [];
  const live: (Extension | undefined)[] = [];
  const pidsSeen = new Set<number>();
  const reviving = new Set<Promise<unknown>>();
  let reloads = 0;
  let stopping = false;
  let closing = false;

  /** Brings an extension back after a crash. The one place to switch to the restart policy once it lands. */
  function revive(i: number): Promise<Extension> {
    live[i] = undefined;
    const loading = manager.load(optionsOf(i)).then((ext) => {
      if (ext.pid !== undefined) pidsSeen.add(ext.pid);
      live[i] = ext;
      ext.once("exit", () => {
        if (live[i] !== ext || closing) return;
        const again = revive(i).then(() => void reloads++, (err: unknown) => log(`reload of ${names[i]} failed: ${String(err)}`));
        reviving.add(again);
        void again.finally(() => reviving.delete(again));
      });
      return ext;
    });
    current[i] = loading;
    return loading;
  }

  log(`loading ${o.extensions} extensions (${o.tensorExtensions} with numpy)`);
  await Promise.all(names.map((_, i) => revive(i)));

  const report: SoakReport = {
    calls: 0, ok: 0, typed: {}, untyped: [], duplicated: 0, hanging: 0, kills: 0, reloads: 0, tensorCalls: 0, bytesCalls: 0,
    servingAfter: 0, start: usage(), end: usage(), orphans: [], memfdsLeft: 0, elapsedMs: 0,
  };
  const inFlight = new Map<number, Promise<void>>();

  function issue(): void {
    const id = ++report.calls;
    const i = Math.floor(Math.random() * o.extensions);
    const ext = current[i]!;
    const kind = Math.random();
    let call: Promise<unknown>;
    let tensor: Tensor | undefined;
    if (i < o.tensorExtensions && kind < 0.5) {
      report.tensorCalls++;
      tensor = Tensor.from(new Float32Array(1024).fill(1), [32, 32]);
      const sent = tensor;
      call = ext.then((e) => e.call("tensor_sum", [sent])).then((r) => {
        const [sum, doubled] = r as [number, Tensor];
        if (sum !== 1024) throw new Error(`tensor_sum returned ${sum}`);
        doubled.release();
      });
    } else if (kind < 0.8) {
      report.bytesCalls++;
      const n = 1 + Math.floor(Math.random() * 256 * 1024);
      call = ext.then((e) => e.call("nbytes", [new Uint8Array(n)])).then((r) => {
        if (r !== n) throw new Error(`nbytes returned ${String(r)} for ${n}`);
      });
    } else {
      const value = { id, list: [1, "two", null], big: 2n ** 70n };
      call = ext.then((e) => e.call("echo", [value])).then((r) => {
        if ((r as { id: number }).id !== id) throw new Error("echo returned another value");
      });
    }
    const done = call.then(
      () => void report.ok++,
      (err: unknown) => {
        if (err instanceof PyIsolateError) report.typed[err.name] = (report.typed[err.name] ?? 0) + 1;
        else report.untyped.push(String(err));
      },
    ).finally(() => {
      tensor?.release();
      // A second settlement would find its id gone (the map holds only calls in flight, so it stays bounded).
      if (!inFlight.delete(id)) report.duplicated++;
    });
    inFlight.set(id, done);
  }

  await Promise.all(names.map((_, i) => live[i]!.call("echo", [0])));
  const began = Date.now();
  let baselined = false;
  let paused = false;
  const killer = (async () => {
    while (!stopping) {
      const [lo, hi] = o.killEveryMs;
      await new Promise((resolve) => setTimeout(resolve, lo + Math.random() * (hi - lo)));
      if (stopping) break;
      if (paused) continue;
      const ext = live[Math.floor(Math.random() * o.extensions)];
      if (ext?.pid === undefined || ext.state !== "ready") continue;
      try {
        process.kill(ext.pid, "SIGKILL");
        report.kills++;
      } catch {
        // it died on its own meanwhile
      }
    }
  })();
  let lastLog = began;
  while (Date.now() - began < o.durationMs) {
    if (!baselined && Date.now() - began >= o.warmupMs) {
      // The baseline, taken as the end is: no call in flight, no kill, every extension back and serving.
      baselined = true;
      paused = true;
      await Promise.all(inFlight.values());
      while (reviving.size > 0) await Promise.all([...reviving]);
      await Promise.all(current);
      for (let round = 0; round < 3; round++) {
        gc();
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      report.start = usage();
      paused = false;
      log(`baseline after ${o.warmupMs} ms: rss ${(report.start.rss / 2 ** 20).toFixed(1)} MiB, heap ${(report.start.heapUsed / 2 ** 20).toFixed(1)} MiB, ${report.start.fds} fds, ${report.start.memfds} memfds`);
    }
    while (inFlight.size < o.concurrency) issue();
    await Promise.race(inFlight.values());
    if (Date.now() - lastLog > 10_000) {
      lastLog = Date.now();
      log(`${Math.round((lastLog - began) / 1000)} s: ${report.calls} calls, ${report.ok} ok, ${report.kills} kills, ${reloads} reloads`);
    }
  }
  stopping = true;
  await killer;
  // Every call must settle on its own: a bounded wait, then whatever is left is hanging.
  const drained = Promise.all(inFlight.values());
  await Promise.race([drained, new Promise((resolve) => setTimeout(resolve, 60_000))]);
  report.hanging = inFlight.size;
  while (reviving.size > 0) await Promise.all([...reviving]);
  report.reloads = reloads;
  report.elapsedMs = Date.now() - began;

  // Killed extensions came back: each one serves again.
  const after = await Promise.allSettled(names.map((_, i) => current[i]!.then((ext) => ext.call("echo", ["after"]))));
  report.servingAfter = after.filter((r) => r.status === "fulfilled" && r.value === "after").length;
  for (let round = 0; round < 3; round++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  report.end = usage();

  closing = true;
  await manager.close();
  const ours = (): number[] => descendants().filter((pid) => !before.has(pid));
  for (let i = 0; i < 50 && ours().length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 100));
  report.orphans = [...new Set([...ours(), ...[...pidsSeen].filter(isExtensionProcess)])].map(describe);
  gc();
  report.memfdsLeft = usage().memfds;
  log(`done: ${JSON.stringify({ ...report, typed: report.typed, untyped: report.untyped.slice(0, 5) })}`);
  return report;
}
