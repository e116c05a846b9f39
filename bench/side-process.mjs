// Runs one benchmark side (or the setup script) as a child process with a time limit.
// Output goes to a log file; the result is read back from the --out JSON file.

import { spawn } from "node:child_process";
import { openSync, closeSync, readFileSync, rmSync } from "node:fs";

const KILL_GRACE_MS = 5_000;

/**
 * Runs argv[0] with argv[1..] in its own process group; stdout and stderr go to logFile.
 * On timeout the whole group gets SIGTERM, then SIGKILL after a grace period, so the
 * extension processes a side started do not outlive it.
 * Resolves { code, signal, timedOut, seconds }.
 */
export function runLogged(argv, { cwd, logFile, timeoutMs, env = process.env }) {
  const log = openSync(logFile, "w");
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { cwd, env, detached: true, stdio: ["ignore", log, log] });
    const killGroup = (signal) => {
      try {
        process.kill(-child.pid, signal);
      } catch {
        // The group is gone already.
      }
    };
    const onHostExit = () => killGroup("SIGKILL");
    process.on("exit", onHostExit);
    let timedOut = false;
    let killTimer;
    const limitTimer = setTimeout(() => {
      timedOut = true;
      killGroup("SIGTERM");
      killTimer = setTimeout(() => killGroup("SIGKILL"), KILL_GRACE_MS);
    }, timeoutMs);
    const finish = () => {
      clearTimeout(limitTimer);
      clearTimeout(killTimer);
      process.off("exit", onHostExit);
      closeSync(log);
    };
    child.on("error", (error) => {
      finish();
      reject(error);
    });
    child.on("close", (code, signal) => {
      finish();
      // Leftovers of a side that exited without stopping its extensions.
      killGroup("SIGKILL");
      resolve({ code, signal, timedOut, seconds: Number(process.hrtime.bigint() - started) / 1e9 });
    });
  });
}

/** The last lines of a log file, for error messages. */
export function logTail(logFile, lines = 5) {
  try {
    return readFileSync(logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

/**
 * Runs one side that writes its JSON result to outFile. Returns that result, or
 * { unavailable: reason } when the side could not run at all.
 */
export async function runSide(label, argv, { cwd, outFile, logFile, timeoutMs }) {
  rmSync(outFile, { force: true });
  let run;
  try {
    run = await runLogged([...argv, "--out", outFile], { cwd, logFile, timeoutMs });
  } catch (error) {
    return { unavailable: `${label} could not start: ${error.message}` };
  }
  let result;
  try {
    result = JSON.parse(readFileSync(outFile, "utf8"));
  } catch {
    const how = run.timedOut ? `timed out after ${timeoutMs / 1000}s` : `exited ${run.code ?? run.signal}`;
    return { unavailable: `${label} ${how} without a result; see ${logFile}:\n${logTail(logFile)}` };
  }
  result.seconds = run.seconds;
  if (result.errors?.load) result.unavailable = result.errors.load;
  return result;
}
