// The planted world of the time-of-check/time-of-use tests: a fake home with a credential folder, granted folders,
// the swap that turns a granted folder into a symlink to the credentials, and one-shot runs outside the manager.

import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

export const SECRET = "toctou: the host user's private key";
export const MARKER = "toctou: the folder the guard checked";
export const SECRET_FILE = "id_ed25519";

export interface World {
  root: string;
  /** Stands in for the host's home: HOME points here while a test runs, so the guard refuses its .ssh. */
  home: string;
  ssh: string;
  /** Granted read-only (holds MARKER); writable; both are swapped for symlinks to `ssh`. */
  data: string;
  wdata: string;
  cleanup(): void;
}

export function plantWorld(): World {
  const root = mkdtempSync(path.join(tmpdir(), "trust-toctou-"));
  const home = path.join(root, "home");
  const ssh = path.join(home, ".ssh");
  const data = path.join(root, "data");
  const wdata = path.join(root, "wdata");
  for (const dir of [ssh, data, wdata]) mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(ssh, SECRET_FILE), SECRET);
  writeFileSync(path.join(data, "marker.txt"), MARKER);
  const savedHome = process.env.HOME;
  process.env.HOME = home;
  return {
    root,
    home,
    ssh,
    data,
    wdata,
    cleanup() {
      if (savedHome === undefined) delete process.env.HOME;
      else process.env.HOME = savedHome;
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/**
 * The attack, after the guard's check: each granted folder moves aside (to `<name>.checked`) and a symlink to the
 * credential folder takes its name. Relative, so that it leads there from bwrap's /oldroot view as well.
 */
export function swapToSecret(world: World, dirs: readonly string[] = [world.data, world.wdata]): void {
  for (const dir of dirs) {
    renameSync(dir, `${dir}.checked`);
    symlinkSync(path.relative(path.dirname(dir), world.ssh), dir);
  }
}

export function readIfThere(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

export interface OneShot {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run an argv with `fds` inherited from descriptor 6 on (as the guest gets its pinned paths; 5 is the heartbeat); collect its output. */
export function runWithFds(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  fds: readonly number[] = [],
): Promise<OneShot> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      env,
      stdio: ["ignore", "pipe", "pipe", "ignore", "ignore", "ignore", ...fds],
    });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** A Python one-liner that prints what reading `file` gives: the text, or the exception's type name. */
export function readerScript(file: string): string {
  return `import sys\ntry:\n  sys.stdout.write(open(${JSON.stringify(file)}).read())\nexcept Exception as e:\n  sys.stdout.write(type(e).__name__)`;
}
