// Where does the p99 of a small host -> extension call come from? Runs the host_to_ext scenario the way
// bench/ours.mjs does (fresh manager, first load + ping, pid, 0.5 s idle, 200 warm-up, N timed sequential
// ping(1) calls, each timed with process.hrtime.bigint()), and correlates every slow call with:
//   - Node GC (perf_hooks 'gc' entries), host-side timestamps
//   - the guest: with --ext probe, bench/investigate/probe_ext stamps method entry and reply write with
//     time.monotonic_ns() (CLOCK_MONOTONIC, the same clock as process.hrtime.bigint() on Linux) and
//     records Python gc collections (gc.callbacks)
//   - context switches (rusage) of both processes, and optionally per call
//
//   node bench/investigate/latency.mjs [--dist DIR] [--ext probe|bench] [--calls 2000] [--warmup 200]
//        [--blocks 1] [--idle-ms 500] [--pin none|same|split|split-rev|same-main|split-main] [--no-gc-observe] [--rusage]
//        [--py-gc-off] [--py-gc-threshold N] [--py-recv-size BYTES] [--yield none|immediate|timeout] [--json FILE] [--label TEXT]
//
// Prints one summary line per block (p50/p90/p99/p99.9/max in µs) and the slow calls with their legs:
//   out  = guest method entry - host start     (host encode + write, kernel, guest wake + read + decode)
//   in   = guest reply write - guest entry      (the method, encode, transport.write)
//   back = host resolve - guest reply write     (kernel, host wake, read, decode, promise resolution)

import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { PerformanceObserver, performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const HERE = dirname(fileURLToPath(import.meta.url));
const BENCH = dirname(HERE);
const { values: cli } = parseArgs({
  options: {
    dist: { type: "string", default: join(BENCH, "..", "dist") },
    ext: { type: "string", default: "probe" },
    calls: { type: "string", default: "2000" },
    warmup: { type: "string", default: "200" },
    blocks: { type: "string", default: "1" },
    "idle-ms": { type: "string", default: "500" },
    pin: { type: "string", default: "none" },
    "no-gc-observe": { type: "boolean", default: false },
    rusage: { type: "boolean", default: false },
    "py-gc-off": { type: "boolean", default: false },
    "py-gc-threshold": { type: "string" },
    "py-recv-size": { type: "string" }, // guest transport's recv size (asyncio default 256 KiB)
    yield: { type: "string", default: "none" },
    json: { type: "string" },
    label: { type: "string", default: "" },
    slow: { type: "string" }, // µs; default max(3 × p50, p99 of the block)
    quiet: { type: "boolean", default: false },
    threads: { type: "boolean", default: false }, // print per-thread CPU ms / involuntary switches per block
  },
});
const CALLS = Number(cli.calls);
const WARMUP = Number(cli.warmup);
const BLOCKS = Number(cli.blocks);

// --- Node GC events on the hrtime clock -----------------------------------------------------------------
// performance.now() is uv_hrtime() minus a fixed origin, so one reading of both gives the offset.
const perfOffsetNs = process.hrtime.bigint() - BigInt(Math.round(performance.now() * 1e6));
const nodeGc = [];
const GC_KINDS = { 1: "scavenge", 2: "mark-compact", 4: "incremental", 8: "weakcb", 15: "all" };
let observer;
if (!cli["no-gc-observe"]) {
  observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const start = perfOffsetNs + BigInt(Math.round(e.startTime * 1e6));
      nodeGc.push({
        start,
        end: start + BigInt(Math.round(e.duration * 1e6)),
        kind: GC_KINDS[e.detail?.kind] ?? e.detail?.kind,
      });
    }
  });
  observer.observe({ entryTypes: ["gc"] });
}

function ctxSwitches(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, "utf8");
    const get = (k) => Number(s.match(new RegExp(`${k}:\\s+(\\d+)`))?.[1]);
    return { vol: get("voluntary_ctxt_switches"), invol: get("nonvoluntary_ctxt_switches") };
  } catch {
    return { vol: NaN, invol: NaN };
  }
}
/** Summed over all threads of pid (the status file of the process is the main thread only). */
function ctxSwitchesAllThreads(pid) {
  let vol = 0;
  let invol = 0;
  try {
    for (const tid of execFileSync("ls", [`/proc/${pid}/task`], { encoding: "utf8" })
      .trim()
      .split("\n")) {
      const c = ctxSwitches(`${pid}/task/${tid}`);
      vol += c.vol;
      invol += c.invol;
    }
  } catch {}
  return { vol, invol };
}

/** Busy CPU ms of the whole machine (all CPUs) from /proc/stat, idle and iowait excluded. */
function machineBusyMs() {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f;
  return (user + nice + system + irq + softirq + steal) * 10;
}
const sumMs = (stats) => Object.values(stats).reduce((a, v) => a + v.ms, 0);

/** Per-thread CPU time (ms) and involuntary switches of pid, by "comm(tid)". */
function threadStats(pid) {
  const out = {};
  let tids = [];
  try {
    tids = execFileSync("ls", [`/proc/${pid}/task`], { encoding: "utf8" })
      .trim()
      .split("\n");
  } catch {}
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // schedstat: ns on CPU, ns waiting runnable for a CPU, time slices
      const [run, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").trim().split(" ").map(Number);
      out[`${comm}(${tid})`] = {
        ms: run / 1e6,
        waitMs: wait / 1e6,
        invol: ctxSwitches(`${pid}/task/${tid}`).invol,
        cpu: Number(fields[36]),
      };
    } catch {}
  }
  return out;
}
function threadDelta(a, b) {
  const d = {};
  for (const [k, v] of Object.entries(b)) {
    const ms = v.ms - (a[k]?.ms ?? 0);
    const waitMs = v.waitMs - (a[k]?.waitMs ?? 0);
    const invol = v.invol - (a[k]?.invol ?? 0);
    if (ms > 0.05 || invol > 0) d[k] = `run ${ms.toFixed(1)}ms wait ${waitMs.toFixed(1)}ms ${invol}inv`;
  }
  return d;
}

/** Pins every thread of pid (allThreads) or only its main thread (tid = pid) to cpus. */
function pin(pid, cpus, allThreads = true) {
  execFileSync("taskset", [...(allThreads ? ["-a"] : []), "-p", "-c", cpus, String(pid)], { stdio: "ignore" });
}

const pct = (sorted, p) => sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1];
const us = (ns) => Number(ns) / 1e3;
const f = (x) => (Number.isFinite(x) ? x.toFixed(0).padStart(5) : "    -");

function summarize(samplesNs) {
  const s = samplesNs.map(Number).sort((a, b) => a - b);
  return {
    n: s.length,
    p50: us(pct(s, 50)),
    p90: us(pct(s, 90)),
    p99: us(pct(s, 99)),
    p999: us(pct(s, 99.9)),
    max: us(s.at(-1)),
  };
}

const overlaps = (events, t0, t1) => events.filter((e) => e.end > t0 && e.start < t1);

async function main() {
  const api = await import(pathToFileURL(join(cli.dist, "index.js")).href);
  const probe = cli.ext === "probe";
  const modulePath = probe ? join(HERE, "probe_ext") : join(BENCH, "extensions", "bench_ext");
  const manager = new api.ExtensionManager({
    venvRoot: join(BENCH, ".work", probe ? "investigate-venvs" : "ours-venvs"),
  });
  manager.provide("BenchService", {
    async ping(x) {
      return x;
    },
  });
  const result = { label: cli.label, args: cli, blocks: [] };
  try {
    const ext = await manager.load({
      name: probe ? "probe_ext" : "bench_ext",
      modulePath,
      dependencies: [],
      sandbox: { mode: "disabled" },
    });
    await ext.call("ping", [1]);
    const guestPid = await ext.call("pid", []);
    if (cli.pin === "same") {
      pin(process.pid, "0");
      pin(guestPid, "0");
    } else if (cli.pin === "split") {
      pin(process.pid, "0");
      pin(guestPid, "1");
    } else if (cli.pin === "split-rev") {
      pin(process.pid, "1");
      pin(guestPid, "0");
    }
    // Host main thread only: V8's worker threads (compiler, GC helpers) stay free to run on either CPU.
    else if (cli.pin === "same-main") {
      pin(process.pid, "0", false);
      pin(guestPid, "0");
    } else if (cli.pin === "split-main") {
      pin(process.pid, "0", false);
      pin(guestPid, "1");
    } else if (cli.pin !== "none") throw new Error(`--pin: none|same|split|split-rev|same-main|split-main`);
    if (Number(cli["idle-ms"]) > 0) await sleep(Number(cli["idle-ms"])); // the idle_rss scenario before host_to_ext
    await warmup(ext);
    const yieldFn =
      cli.yield === "immediate"
        ? () => new Promise((r) => setImmediate(r))
        : cli.yield === "timeout"
          ? () => sleep(0)
          : undefined;
    for (let block = 0; block < BLOCKS; block++) {
      const probeInfo = probe
        ? await ext.call("start_probe", [
            {
              gc: true,
              rusage: cli.rusage,
              disable_gc: cli["py-gc-off"],
              gc_threshold0: cli["py-gc-threshold"] ? Number(cli["py-gc-threshold"]) : null,
              recv_size: cli["py-recv-size"] ? Number(cli["py-recv-size"]) : null,
            },
          ])
        : undefined;
      nodeGc.length = 0;
      const hostCsw0 = ctxSwitchesAllThreads(process.pid);
      const guestCsw0 = ctxSwitches(guestPid);
      const hostThreads0 = threadStats(process.pid);
      const guestThreads0 = threadStats(guestPid);
      const busy0 = machineBusyMs();
      const wall0 = process.hrtime.bigint();
      const { t0s, t1s, hostInvol } = await (yieldFn || cli.rusage
        ? timedLoopInstrumented(ext, yieldFn)
        : timedLoop(ext));
      const hostCsw1 = ctxSwitchesAllThreads(process.pid);
      const guestCsw1 = ctxSwitches(guestPid);
      const busyMs = machineBusyMs() - busy0;
      const wallMs = Number(process.hrtime.bigint() - wall0) / 1e6;
      const hostThreads1 = threadStats(process.pid);
      const guestThreads1 = threadStats(guestPid);
      const hostThreads = threadDelta(hostThreads0, hostThreads1);
      const guestThreads = threadDelta(guestThreads0, guestThreads1);
      // CPU that neither the host nor the extension used during the block (jiffy resolution: ±20 ms):
      // other processes on this shared machine. Over ~0.3 × wall it is a run to discard.
      const ownMs = sumMs(hostThreads1) - sumMs(hostThreads0) + sumMs(guestThreads1) - sumMs(guestThreads0);
      const foreignMs = busyMs - ownMs;
      await new Promise((r) => setImmediate(r)); // let the gc observer deliver
      const g = probe ? await ext.call("stop_probe", []) : undefined;
      let tOut = g?.t_out ?? [];
      if (tOut.length === CALLS + 1) tOut = tOut.slice(1); // start_probe's own reply
      const samples = t0s.map((t, i) => t1s[i] - t);
      const sum = summarize(samples);
      const pyGc = (g?.gc ?? []).map(([gen, start, end, collected]) => ({
        gen,
        start: BigInt(start),
        end: BigInt(end),
        collected,
      }));
      const slowNs = cli.slow ? Number(cli.slow) * 1e3 : Math.max(3 * sum.p50, sum.p99) * 1e3;
      const slow = [];
      for (let i = 0; i < CALLS; i++) {
        const d = Number(samples[i]);
        if (d < slowNs) continue;
        const tin = g ? BigInt(g.t_in[i]) : undefined;
        const tout = tOut[i] !== undefined ? BigInt(tOut[i]) : undefined;
        slow.push({
          i,
          us: us(d),
          out: tin !== undefined ? us(tin - t0s[i]) : NaN,
          in: tin !== undefined && tout !== undefined ? us(tout - tin) : NaN,
          back: tout !== undefined ? us(t1s[i] - tout) : NaN,
          nodeGc: overlaps(nodeGc, t0s[i], t1s[i]).map((e) => `${e.kind}:${us(e.end - e.start).toFixed(0)}`),
          pyGc: overlaps(pyGc, t0s[i], t1s[i]).map((e) => `g${e.gen}:${us(e.end - e.start).toFixed(0)}`),
          hostCsw: hostInvol && i + 1 < CALLS ? hostInvol[i + 1] - hostInvol[i] : undefined,
          guestCsw: g?.csw?.length === CALLS && i + 1 < CALLS ? g.csw[i + 1] - g.csw[i] : undefined,
        });
      }
      // How much of the tail the GCs explain: slow calls with any overlapping GC.
      const withNodeGc = slow.filter((s) => s.nodeGc.length).length;
      const withPyGc = slow.filter((s) => s.pyGc.length).length;
      // Median legs, to compare with the slow calls' legs.
      const legs = g ? summarizeLegs(t0s, t1s, g.t_in, tOut) : undefined;
      const firstQuarter = slow.filter((s) => s.i < CALLS / 4).length;
      const blockResult = {
        block,
        ...sum,
        slowThresholdUs: slowNs / 1e3,
        slowCount: slow.length,
        slowInFirstQuarter: firstQuarter,
        slowWithNodeGc: withNodeGc,
        slowWithPyGc: withPyGc,
        nodeGcCount: nodeGc.length,
        nodeGcKinds: countBy(nodeGc.map((e) => e.kind)),
        nodeGcMaxUs: nodeGc.length ? Math.max(...nodeGc.map((e) => us(e.end - e.start))) : 0,
        pyGcCount: pyGc.length,
        pyGcByGen: countBy(pyGc.map((e) => `g${e.gen}`)),
        pyGcMaxUs: pyGc.length ? Math.max(...pyGc.map((e) => us(e.end - e.start))) : 0,
        hostInvolCsw: hostCsw1.invol - hostCsw0.invol,
        hostVolCsw: hostCsw1.vol - hostCsw0.vol,
        guestInvolCsw: guestCsw1.invol - guestCsw0.invol,
        guestVolCsw: guestCsw1.vol - guestCsw0.vol,
        legsMedianUs: legs,
        probeInfo,
        slow,
        hostThreads,
        guestThreads,
        wallMs,
        ownCpuMs: ownMs,
        foreignCpuMs: foreignMs,
        loadavg: readFileSync("/proc/loadavg", "utf8").split(" ")[0],
        raw: cli.json
          ? {
              t0: t0s.map(String),
              t1: t1s.map(String),
              t_in: g?.t_in,
              t_out: tOut,
              pyGc: g?.gc,
              nodeGc: nodeGc.map((e) => [String(e.start), String(e.end), e.kind]),
            }
          : undefined,
      };
      result.blocks.push(blockResult);
      print(blockResult);
    }
  } finally {
    observer?.disconnect();
    await manager.close();
  }
  if (cli.json) writeFileSync(cli.json, JSON.stringify(result, null, 1));
}

// The timed loop is its own small function, like scenarioHostToExt in bench/ours.mjs: V8 optimizes (OSR) the
// function holding the loop, and a big one (all of main) costs a long compile of its own mid-measurement.
async function warmup(ext) {
  for (let i = 0; i < WARMUP; i++) await ext.call("ping", [1]);
}

async function timedLoop(ext) {
  const t0s = new Array(CALLS);
  const t1s = new Array(CALLS);
  for (let i = 0; i < CALLS; i++) {
    const start = process.hrtime.bigint();
    await ext.call("ping", [1]);
    t1s[i] = process.hrtime.bigint();
    t0s[i] = start;
  }
  return { t0s, t1s };
}

async function timedLoopInstrumented(ext, yieldFn) {
  const t0s = new Array(CALLS);
  const t1s = new Array(CALLS);
  const hostInvol = cli.rusage ? new Array(CALLS) : undefined;
  for (let i = 0; i < CALLS; i++) {
    if (hostInvol) hostInvol[i] = process.resourceUsage().involuntaryContextSwitches;
    const start = process.hrtime.bigint();
    await ext.call("ping", [1]);
    t1s[i] = process.hrtime.bigint();
    t0s[i] = start;
    if (yieldFn) await yieldFn();
  }
  return { t0s, t1s, hostInvol };
}

function summarizeLegs(t0s, t1s, tin, tout) {
  if (!tin || tin.length !== t0s.length) return undefined;
  const out = [],
    inn = [],
    back = [];
  for (let i = 0; i < t0s.length; i++) {
    out.push(Number(BigInt(tin[i]) - t0s[i]));
    if (tout[i] !== undefined) {
      inn.push(tout[i] - tin[i]);
      back.push(Number(t1s[i] - BigInt(tout[i])));
    }
  }
  const m = (a) => {
    const s = a.sort((x, y) => x - y);
    return { p50: us(pct(s, 50)), p99: us(pct(s, 99)) };
  };
  return { out: m(out), in: inn.length ? m(inn) : undefined, back: back.length ? m(back) : undefined };
}

function countBy(xs) {
  const o = {};
  for (const x of xs) o[x] = (o[x] ?? 0) + 1;
  return o;
}

function print(b) {
  const legs = b.legsMedianUs
    ? ` legs p50/p99 out ${f(b.legsMedianUs.out.p50)}/${f(b.legsMedianUs.out.p99)} in ${f(b.legsMedianUs.in?.p50)}/${f(b.legsMedianUs.in?.p99)} back ${f(b.legsMedianUs.back?.p50)}/${f(b.legsMedianUs.back?.p99)}`
    : "";
  console.log(
    `${cli.label} block ${b.block}: n=${b.n} p50 ${f(b.p50)} p90 ${f(b.p90)} p99 ${f(b.p99)} p99.9 ${f(b.p999)} max ${f(b.max)} µs |` +
      ` slow(>=${b.slowThresholdUs.toFixed(0)}) ${b.slowCount} (first quarter ${b.slowInFirstQuarter}, w/ nodeGC ${b.slowWithNodeGc}, w/ pyGC ${b.slowWithPyGc}) |` +
      ` nodeGC ${JSON.stringify(b.nodeGcKinds)} max ${b.nodeGcMaxUs.toFixed(0)} | pyGC ${JSON.stringify(b.pyGcByGen)} max ${b.pyGcMaxUs.toFixed(0)} |` +
      ` wall ${b.wallMs.toFixed(0)}ms own cpu ${b.ownCpuMs.toFixed(0)}ms foreign ${b.foreignCpuMs.toFixed(0)}ms |` +
      ` csw invol host ${b.hostInvolCsw} guest ${b.guestInvolCsw}, vol host ${b.hostVolCsw} guest ${b.guestVolCsw} | load ${b.loadavg}${legs}`,
  );
  if (cli.threads)
    console.log(`   threads host ${JSON.stringify(b.hostThreads)} guest ${JSON.stringify(b.guestThreads)}`);
  if (!cli.quiet) {
    for (const s of b.slow) {
      console.log(
        `   #${String(s.i).padStart(5)} ${f(s.us)} µs  out ${f(s.out)} in ${f(s.in)} back ${f(s.back)}  nodeGC [${s.nodeGc}] pyGC [${s.pyGc}]${s.hostCsw !== undefined ? ` hostCsw ${s.hostCsw}` : ""}${s.guestCsw !== undefined ? ` guestCsw ${s.guestCsw}` : ""}`,
      );
    }
  }
}

await main();
