// Where a bytes echo's time goes: N echoes of one size, with the CPU each process spent and (--strace) every
// syscall of both processes with its duration, summed per call name and per process.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { loadavg } from "node:os";

const HERE = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    size: { type: "string", default: String(50 * 1024 * 1024) },
    reps: { type: "string", default: "15" },
    strace: { type: "boolean", default: false },
    dist: { type: "string", default: join(HERE, "..", "..", "dist") },
    out: { type: "string", default: join(process.env.TMPDIR ?? "/tmp", "bytes-steps.strace") },
  },
});
const size = Number(values.size);
const reps = Number(values.reps);
const api = await import(pathToFileURL(join(values.dist, "index.js")).href);
const manager = new api.ExtensionManager({ venvRoot: join(HERE, "..", ".work", "ours-venvs") });
const ext = await manager.load({
  name: "bench_ext",
  modulePath: join(HERE, "..", "extensions", "bench_ext"),
  dependencies: [],
  sandbox: { mode: "disabled" },
});
const pid = await ext.call("pid", []);
const cpuOf = (p) => {
  const f = readFileSync(`/proc/${p}/stat`, "utf8").split(") ")[1].split(" ");
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // ms, at USER_HZ 100
};
const data = Buffer.alloc(size);
for (let i = 0; i < size; i += 4096) data[i] = i & 0xff;
for (let i = 0; i < 3; i++) await ext.call("echo", [data]);
let tracer;
if (values.strace) {
  tracer = spawn("strace", ["-f", "-T", "-qq", "-o", values.out, "-p", String(pid), "-p", String(process.pid)], {
    stdio: "ignore",
  });
  await sleep(1500);
}
const hostCpu0 = process.cpuUsage();
const guestCpu0 = cpuOf(pid);
const samples = [];
for (let i = 0; i < reps; i++) {
  const t = process.hrtime.bigint();
  await ext.call("echo", [data]);
  samples.push(Number(process.hrtime.bigint() - t) / 1e6);
}
const host = process.cpuUsage(hostCpu0);
const guestCpu = cpuOf(pid) - guestCpu0;
if (tracer) {
  tracer.kill("SIGINT");
  await new Promise((r) => tracer.on("exit", r));
}
samples.sort((a, b) => a - b);
console.log(
  JSON.stringify({
    size,
    reps,
    load: loadavg()[0],
    median_ms: samples[Math.floor(samples.length / 2)],
    min_ms: samples[0],
    host_cpu_ms_per_echo: (host.user + host.system) / 1000 / reps,
    guest_cpu_ms_per_echo: guestCpu / reps,
  }),
);
await ext.stop();
await manager.close();
if (tracer) {
  // Per process (the guest's threads under its pid, the host's under ours): sum of durations by syscall name.
  const sums = new Map();
  for (const line of readFileSync(values.out, "utf8").split("\n")) {
    const m = /^(\d+)\s+(\w+)\(.*<([\d.]+)>$/.exec(line);
    if (!m) continue;
    const key = `${m[1]} ${m[2]}`;
    const s = sums.get(key) ?? { n: 0, ms: 0 };
    s.n++;
    s.ms += Number(m[3]) * 1000;
    sums.set(key, s);
  }
  const rows = [...sums].sort((a, b) => b[1].ms - a[1].ms).slice(0, 30);
  for (const [k, s] of rows)
    console.log(`${k.padEnd(28)} n=${String(s.n).padStart(5)} ${(s.ms / reps).toFixed(3)} ms/echo`);
}
