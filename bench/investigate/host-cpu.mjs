// The host's own CPU per small call, whatever the guest costs: our RpcPeer calls `ping(i)` on a stand-in guest (a
// Node child that answers every call of one read with one write of result frames, no JSON walk), and the host's
// process.cpuUsage() is divided by the calls. Sequential (one call in flight) and pipelined (5000 in flight).
//
//   node bench/investigate/host-cpu.mjs [--dist DIR] [--calls 20000] [--rounds 3]
//
// The stand-in answers as fast as a guest could, so the pipelined figure is the host's ceiling in calls/s; the
// sequential one includes the wake-ups and syscalls of each round trip (expensive in a VM).

import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const HERE = dirname(fileURLToPath(import.meta.url));
const { values: cli } = parseArgs({
  options: {
    dist: { type: "string", default: join(HERE, "..", "..", "dist") },
    calls: { type: "string", default: "20000" },
    rounds: { type: "string", default: "3" },
    child: { type: "boolean", default: false },
  },
});

/** The stand-in guest: reads frames on fd 3, answers each with `{"k":"result","id":N,"value":1}`. */
async function guest() {
  const { Socket } = await import("node:net");
  const socket = new Socket({ fd: 3, readable: true, writable: true });
  let rest = Buffer.alloc(0);
  socket.on("data", (chunk) => {
    const data = rest.length ? Buffer.concat([rest, chunk]) : chunk;
    const replies = [];
    let pos = 0;
    while (data.length - pos >= 4) {
      const n = data.readUInt32BE(pos);
      if (data.length - pos - 4 < n) break;
      const header = data.toString("latin1", pos + 8, pos + 4 + n);
      const id = /"id":(\d+)/.exec(header)[1];
      const json = Buffer.from(`{"k":"result","id":${id},"value":1}`);
      const head = Buffer.alloc(8);
      head.writeUInt32BE(json.length + 4, 0);
      head.writeUInt32BE(json.length, 4);
      replies.push(head, json);
      pos += 4 + n;
    }
    rest = data.subarray(pos);
    if (replies.length) socket.write(Buffer.concat(replies));
  });
}

async function host() {
  const { RpcPeer } = await import(pathToFileURL(join(cli.dist, "rpc", "peer.js")).href);
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), "--child"], {
    stdio: ["ignore", "inherit", "inherit", "pipe"],
  });
  const peer = new RpcPeer(child.stdio[3]);
  const calls = Number(cli.calls);
  const measure = async (label, run) => {
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await run();
    const wallUs = Number(process.hrtime.bigint() - t0) / 1e3;
    const cpu = process.cpuUsage(cpu0);
    return { label, cpuUs: (cpu.user + cpu.system) / calls, callsPerS: (calls / wallUs) * 1e6 };
  };
  const sequential = async () => {
    for (let i = 0; i < calls; i++) await peer.call("ext", "ping", [i]);
  };
  const pipelined = async () => {
    for (let r = 0; r < calls / 5000; r++)
      await Promise.all(Array.from({ length: 5000 }, (_, i) => peer.call("ext", "ping", [i])));
  };
  await sequential(); // warm-up: V8 compiles the path
  await pipelined();
  const rows = [];
  for (let r = 0; r < Number(cli.rounds); r++) {
    rows.push(await measure("sequential", sequential), await measure("pipelined 5000", pipelined));
  }
  for (const label of ["sequential", "pipelined 5000"]) {
    const mine = rows.filter((row) => row.label === label);
    const median = (key) => mine.map((row) => row[key]).sort((a, b) => a - b)[Math.floor(mine.length / 2)];
    console.log(
      `${label}: host cpu ${median("cpuUs").toFixed(2)} µs/call, ${median("callsPerS").toFixed(0)} calls/s (median of ${mine.length})`,
    );
  }
  peer.close();
  child.kill();
}

await (cli.child ? guest() : host());
