// The floor (issue 13): a bare round trip on our transport, and our small call as a ratio to it.
//
//   node bench/transport-floor.mjs [--rounds 3] [--dist DIR] [--python python3] [--out FILE]
//   taskset -c 0 node bench/transport-floor.mjs --out bench/results/transport-floor-one-cpu.json
//   taskset -c 0 node bench/transport-floor.mjs --peer-cpu 1 --out bench/results/transport-floor-split.json
//   ... --floor-session host    the floor's peers in the host's session (default: each in its own, as an extension)
//
// The floor is a Node process and a Python process exchanging length-prefixed frames (4-byte length, 64-byte body,
// the size of a small call's header) on the same kind of Unix socket as an extension's fd 3, with no JSON and no
// dispatch: `floor_peer.py` echoes each complete frame. Two Python sides: `blocking` (recv_into and sendall, the
// least Python can do per frame) and `asyncio` (a BufferedProtocol on the event loop our guest runs on). Then our
// host's `ping(1)` to bench_ext, unsandboxed, in the same process. Within a round the three take turns in blocks of
// 200 calls, so drift and outside load hit all alike; each figure is the median over rounds. Results go to bench/results/transport-floor.json (or --out).
//
// Under `taskset -c 0` every process shares one CPU (children inherit the affinity): a message then wakes its
// reader by a context switch on that CPU, not on another vCPU that may have halted, which on this VM costs 50-80 µs
// a round trip and swings by 4x between rounds. What is left is each side's own work, steady to a microsecond.
//
// With `--peer-cpu N` each Python process is moved to CPU N once started (taskset -a -p), the host staying where
// taskset put it: every pair then runs split across two CPUs, each message a cross-CPU wake-up. Left free, this VM's
// kernel keeps a pair on one vCPU only while each side runs briefly per wake-up (bench/README.md, session 12), so
// the floors' pairs and ours are placed differently and the default run compares placements as much as software;
// the one-CPU and the split runs compare like with like.

import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { median, percentile } from "./stats.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const WARMUP = 10_000; // as the steady-state block of ours.mjs: V8 compiles the path for thousands of calls
const TIMED = 2000;
/** The timed calls of each side go in this many blocks, the sides taking turns. */
const BLOCKS = 10;
const PIPELINED = 5000;
const BODY = Buffer.alloc(64, 0x61);

const { values: cli } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    dist: { type: "string", default: join(HERE, "..", "dist") },
    python: { type: "string", default: "python3" },
    out: { type: "string", default: join(HERE, "results", "transport-floor.json") },
    "peer-cpu": { type: "string" },
    "floor-session": { type: "string", default: "own" },
  },
});

/** A floor_peer.py child on fd 3 and the frames it echoes back. */
function startPeer(mode) {
  const child = spawn(cli.python, [join(HERE, "floor_peer.py"), mode], {
    stdio: ["ignore", "inherit", "inherit", "pipe"],
    // Every extension process runs in a session of its own (setsid unsandboxed, bwrap --new-session sandboxed), which
    // with kernel.sched_autogroup_enabled puts it in a scheduling group of its own: 1-1.7 µs a round trip on one CPU
    // here. The floor's peer gets the same by default; `--floor-session host` keeps it in ours (bench/README.md).
    detached: cli["floor-session"] !== "host",
  });
  const socket = child.stdio[3];
  let waiting = 0;
  let wake;
  let rest = Buffer.alloc(0);
  socket.on("data", (chunk) => {
    let data = rest.length ? Buffer.concat([rest, chunk]) : chunk;
    let pos = 0;
    while (data.length - pos >= 4) {
      const n = data.readUInt32BE(pos);
      if (data.length - pos - 4 < n) break;
      pos += 4 + n;
      waiting -= 1;
    }
    rest = data.subarray(pos);
    if (waiting === 0 && wake) wake();
  });
  const frame = Buffer.alloc(4 + BODY.length);
  frame.writeUInt32BE(BODY.length, 0);
  BODY.copy(frame, 4);
  /** Sends `count` frames (one write each, corked together) and resolves when all are echoed. */
  const exchange = (count) =>
    new Promise((resolve) => {
      waiting = count;
      wake = resolve;
      socket.cork();
      for (let i = 0; i < count; i++) socket.write(frame);
      socket.uncork();
    });
  return {
    exchange,
    pid: child.pid,
    close: () => {
      socket.destroy();
      child.kill();
    },
  };
}

/** Nanoseconds on a CPU of every thread of `pid` (/proc/<pid>/task/<tid>/schedstat, first field). */
function peerCpuNs(pid) {
  let total = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
  }
  return total;
}

/** Round trips of one side, as sequential calls: its latency samples and the CPU each process spent on them. */
class Side {
  constructor(once, peerPid) {
    this.once = once;
    this.peerPid = peerPid;
    this.samples = [];
    this.hostCpuUs = 0;
    this.peerCpuNs = 0;
  }

  async warm() {
    for (let i = 0; i < WARMUP; i++) await this.once();
  }

  /** `count` timed calls, one after another. */
  async block(count) {
    const peerBefore = peerCpuNs(this.peerPid);
    const hostBefore = process.cpuUsage();
    for (let i = 0; i < count; i++) {
      const start = process.hrtime.bigint();
      await this.once();
      this.samples.push(Number(process.hrtime.bigint() - start));
    }
    const host = process.cpuUsage(hostBefore);
    this.hostCpuUs += host.user + host.system;
    this.peerCpuNs += peerCpuNs(this.peerPid) - peerBefore;
  }

  summary() {
    return {
      median_us: median(this.samples) / 1e3,
      p99_us: percentile(this.samples, 99) / 1e3,
      host_cpu_us: this.hostCpuUs / this.samples.length,
      peer_cpu_us: this.peerCpuNs / 1e3 / this.samples.length,
    };
  }
}

/** Calls (or frames) per second with `count` sent at once. */
async function pipelined(sendAll) {
  const start = process.hrtime.bigint();
  await sendAll(PIPELINED);
  return PIPELINED / (Number(process.hrtime.bigint() - start) / 1e9);
}

/**
 * One round: both floors' peers and our extension, started fresh and warmed, then timed in alternating blocks of
 * calls (BLOCKS of each), so that the machine's drift within the round (this VM's speed moves within seconds) falls
 * on all three alike; then each one's pipelined rate.
 */
async function measureRound(api) {
  const floors = { blocking: startPeer("blocking"), asyncio: startPeer("asyncio") };
  const manager = new api.ExtensionManager({ venvRoot: join(HERE, ".work", "ours-venvs") });
  try {
    const ext = await manager.load({
      name: "bench_ext",
      modulePath: join(HERE, "extensions", "bench_ext"),
      dependencies: [],
      sandbox: { mode: "disabled" },
    });
    const sides = {
      blocking: new Side(() => floors.blocking.exchange(1), floors.blocking.pid),
      asyncio: new Side(() => floors.asyncio.exchange(1), floors.asyncio.pid),
      ours: new Side(() => ext.call("ping", [1]), ext.pid),
    };
    if (cli["peer-cpu"] !== undefined) {
      for (const side of Object.values(sides)) {
        execFileSync("taskset", ["-a", "-p", "-c", cli["peer-cpu"], String(side.peerPid)], { stdio: "ignore" });
      }
    }
    for (const side of Object.values(sides)) await side.warm();
    for (let block = 0; block < BLOCKS; block++) {
      for (const side of Object.values(sides)) await side.block(TIMED / BLOCKS);
    }
    const oursPipelined = await pipelined(async (count) => {
      const replies = await Promise.all(Array.from({ length: count }, (_, i) => ext.call("ping", [i])));
      if (!replies.every((r, i) => r === i)) throw new Error("pipelined replies wrong");
    });
    return {
      blocking: { ...sides.blocking.summary(), pipelined_per_s: await pipelined(floors.blocking.exchange) },
      asyncio: { ...sides.asyncio.summary(), pipelined_per_s: await pipelined(floors.asyncio.exchange) },
      ours: { ...sides.ours.summary(), pipelined_per_s: oursPipelined },
    };
  } finally {
    for (const floor of Object.values(floors)) floor.close();
    await manager.close();
  }
}

const api = await import(pathToFileURL(join(cli.dist, "index.js")).href);
const rounds = Number(cli.rounds);
const runs = { blocking: [], asyncio: [], ours: [] };
const loadBefore = loadavg()[0];
for (let round = 0; round < rounds; round++) {
  const measured = await measureRound(api);
  for (const name of Object.keys(runs)) runs[name].push(measured[name]);
  console.error(
    `round ${round + 1}/${rounds}: ${JSON.stringify(Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, v.at(-1)])))}`,
  );
}
const med = (name, key) => median(runs[name].map((r) => r[key]));
const summary = {};
for (const name of Object.keys(runs)) {
  summary[name] = {
    median_us: med(name, "median_us"),
    p99_us: med(name, "p99_us"),
    host_cpu_us: med(name, "host_cpu_us"),
    peer_cpu_us: med(name, "peer_cpu_us"),
    pipelined_per_s: med(name, "pipelined_per_s"),
  };
}
const result = {
  date: new Date().toISOString(),
  rounds,
  cpus: availableParallelism(), // 1 under taskset -c 0
  peer_cpu: cli["peer-cpu"] === undefined ? null : Number(cli["peer-cpu"]),
  floor_session: cli["floor-session"],
  loadavg_before: loadBefore,
  loadavg_after: loadavg()[0],
  summary,
  ratios: {
    small_call_to_blocking_floor: summary.ours.median_us / summary.blocking.median_us,
    small_call_to_asyncio_floor: summary.ours.median_us / summary.asyncio.median_us,
  },
  runs,
};
mkdirSync(join(HERE, "results"), { recursive: true });
writeFileSync(cli.out, `${JSON.stringify(result, null, 2)}\n`);
const cell = (value, digits, width) => value.toFixed(digits).padStart(width);
const row = (name) => {
  const s = summary[name];
  return `${name.padEnd(16)} ${cell(s.median_us, 1, 9)} ${cell(s.p99_us, 1, 8)} ${cell(s.host_cpu_us, 1, 12)} ${cell(s.peer_cpu_us, 1, 12)} ${cell(s.pipelined_per_s, 0, 10)}`;
};
console.log(
  `load average ${loadBefore.toFixed(2)} before, ${result.loadavg_after.toFixed(2)} after; ${rounds} round(s)`,
);
console.log(
  `${"".padEnd(16)} ${"median µs".padStart(9)} ${"p99 µs".padStart(8)} ${"host CPU µs".padStart(12)} ${"peer CPU µs".padStart(12)} ${"frames/s".padStart(10)}`,
);
for (const name of Object.keys(summary)) console.log(row(name));
console.log(
  `small call / floor: ${result.ratios.small_call_to_blocking_floor.toFixed(2)}× (blocking), ${result.ratios.small_call_to_asyncio_floor.toFixed(2)}× (asyncio); target 1.5×`,
);
