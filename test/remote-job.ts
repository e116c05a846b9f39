// A "Ray job" that is a local process: `python -m pyisolate._guest.remote` started here, as a job starts it on its
// node, for the tests of loadRemote() and the remote session that need no Ray cluster.

import { spawn } from "node:child_process";
import type { RemoteJob } from "../src/remote/slot.js";
import { RUNTIME_ROOT } from "../src/runtime-paths.js";
import { fixture } from "./helpers.js";

/** Starts the remote guest entry with the slot's dial variables `env`, serving the fixture `echo_ext`. */
export function localJob(env: Record<string, string>): Promise<RemoteJob> {
  const child = spawn(process.env.PYTHON ?? "python3", ["-m", "pyisolate._guest.remote"], {
    cwd: RUNTIME_ROOT,
    env: { PATH: process.env.PATH, PYTHONPATH: RUNTIME_ROOT, PYISOLATE_MODULE_PATH: fixture("echo_ext"), ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const tail: string[] = [];
  child.stderr!.on("data", (d: Buffer) => tail.push(d.toString()));
  const exited = new Promise<{ exitCode: number | null; signal: NodeJS.Signals | null; stderrTail: string[] }>(
    (resolve) => child.once("close", (exitCode, signal) => resolve({ exitCode, signal, stderrTail: tail })),
  );
  return Promise.resolve({ pid: child.pid, exited, kill: () => child.kill("SIGKILL"), placement: { node: "local" } });
}
