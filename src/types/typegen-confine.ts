// Runs the type generator's parser confined: -I -S -B, an empty environment, kernel rlimits it sets on itself before it
// reads a byte of the extension's source, and inside bwrap (no network, only the Python install) where bwrap runs.

import { execFile } from "node:child_process";
import { constants } from "node:os";
import { ProtocolError } from "../errors.js";
import { resolvePython } from "../env/python.js";
import { namespaceArgs, processArgs, systemMountArgs, wrapWithBwrap } from "../sandbox/bwrap-policy.js";
import { detectSandbox } from "../sandbox/detect.js";
import { readSystemLinks, resolvePythonInstall } from "../sandbox/host.js";
import type { NamespaceSupport } from "../sandbox/types.js";

/** Kernel limits on the parser. Parsing 16 MiB of source takes a few seconds and a few hundred MiB at most. */
export interface ParserLimits {
  cpuSeconds: number;
  /** Address space (RLIMIT_AS): a parse that needs more fails with MemoryError, not the host's memory. */
  memoryMiB: number;
}

export const PARSER_LIMITS: Readonly<ParserLimits> = Object.freeze({ cpuSeconds: 30, memoryMiB: 2048 });

/** How the parser ran: inside bwrap, or (where bwrap cannot run, or when asked) with the rlimits alone. */
export type ParserConfinement = "bwrap" | "rlimits";

/**
 * Pure: the Python that sets the limits on its own process, then runs `program`. Nothing of the source has been
 * read yet (it comes on stdin), so the limits hold before the first byte of it is parsed. No file may be written
 * (RLIMIT_FSIZE 0), none opened beyond a few, no child started where the kernel counts this user's tasks.
 */
export function parserPreamble(limits: ParserLimits): string {
  const mib = 1024 * 1024;
  const pairs: [string, number, number][] = [
    ["RLIMIT_CPU", limits.cpuSeconds, limits.cpuSeconds + 1],
    ["RLIMIT_AS", limits.memoryMiB * mib, limits.memoryMiB * mib],
    ["RLIMIT_FSIZE", 0, 0],
    ["RLIMIT_NOFILE", 64, 64],
    ["RLIMIT_CORE", 0, 0],
  ];
  const calls = pairs.map(([name, soft, hard]) => `resource.setrlimit(resource.${name}, (${soft}, ${hard}))`);
  return ["import resource", ...calls, ""].join("\n");
}

/**
 * Pure: bwrap's arguments for the parser: every namespace it can have (an empty network namespace always), the
 * system libraries and the Python install read-only, the tools folder read-only, an empty /tmp, nothing else of
 * the host (no home, no working folder, no /etc beyond what the loader reads).
 */
export function parserBwrapArgs(
  ns: NamespaceSupport,
  links: Readonly<Record<string, string>>,
  readOnly: readonly string[],
): string[] {
  const binds = readOnly.flatMap((dir) => ["--ro-bind", dir, dir]);
  return [
    ...namespaceArgs(ns, false),
    ...processArgs(),
    "--clearenv",
    ...["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--chdir", "/"],
    ...systemMountArgs(links, false),
    ...binds,
  ];
}

export interface ConfinedRun {
  python: string;
  /** The Python program, run after the preamble; stdin carries the data, stdout the answer. */
  program: string;
  /** The folders the program imports from (bound read-only under bwrap). */
  readOnly: readonly string[];
  stdin: string;
  timeoutMs: number;
  limits?: ParserLimits;
  /** "auto": bwrap where it runs with a network namespace, else the rlimits alone; "rlimits": never bwrap. */
  confinement?: "auto" | "rlimits";
}

/** The command line for `run`, and how it is confined. */
async function commandFor(
  run: ConfinedRun,
): Promise<{ command: string; args: string[]; confinement: ParserConfinement }> {
  // The interpreter's real path, as it reports it: a pyenv shim or a symlink would not run inside bwrap.
  const python = (await resolvePython(run.python)).path;
  const code = parserPreamble(run.limits ?? PARSER_LIMITS) + run.program;
  const argv = [python, "-I", "-S", "-B", "-c", code];
  const caps = run.confinement === "rlimits" ? undefined : await detectSandbox();
  const bwrapRuns =
    caps?.bwrap && (caps.backend === "bwrap" || caps.backend === "bwrap-degraded") && caps.namespaces.net;
  if (!caps?.bwrap || !bwrapRuns) return { command: python, args: argv.slice(1), confinement: "rlimits" };
  const install = await resolvePythonInstall({ python, systemSitePackages: false });
  const args = parserBwrapArgs(caps.namespaces, await readSystemLinks(), [...install, ...run.readOnly]);
  return { ...wrapWithBwrap(caps.bwrap.path, args, argv), confinement: "bwrap" };
}

/** The signal that ended the parser: its own, or bwrap's word for it (bwrap exits 128 + the signal's number). */
function killedBy(error: { signal?: NodeJS.Signals | null; code?: unknown }): string | undefined {
  if (error.signal) return `killed by ${error.signal}`;
  const number = typeof error.code === "number" && error.code > 128 ? error.code - 128 : undefined;
  const name = Object.entries(constants.signals).find(([, n]) => n === number)?.[0];
  return name ? `killed by ${name}` : undefined;
}

/** Runs `run.program` confined; resolves to its stdout, or rejects with a ProtocolError that leads with the reason. */
export async function runConfined(run: ConfinedRun): Promise<{ stdout: string; confinement: ParserConfinement }> {
  const { command, args, confinement } = await commandFor(run);
  return new Promise((resolvePromise, reject) => {
    const child = execFile(
      command,
      args,
      { timeout: run.timeoutMs, killSignal: "SIGKILL", maxBuffer: 16 << 20, encoding: "utf8", cwd: "/", env: {} },
      (error, stdout, stderr) => {
        if (!error) return resolvePromise({ stdout, confinement });
        const why = error.killed
          ? `killed after ${run.timeoutMs} ms`
          : (killedBy(error) ?? stderr.trim().split("\n").pop());
        reject(
          new ProtocolError(`the type generator failed: ${why || error.message}`.slice(0, 1000), { cause: error }),
        );
      },
    );
    child.stdin!.on("error", () => {}); // an early exit is reported by the callback
    child.stdin!.end(run.stdin);
  });
}
