// The `limits` option's pure parts: its checks, the yaml's narrowing, the rlimits and bwrap arguments it turns into,
// the watchdog's reading of /proc and its decision, and how the host keeps the guest's rlimit switch its own.

import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, describe, it } from "node:test";
import { readConfigFile } from "../src/config/config-file.js";
import { validateExtensionOptions } from "../src/config/validate.js";
import { ConfigError, ExtensionLimitError } from "../src/index.js";
import { diskUsage } from "../src/limits/disk-usage.js";
import { parseStat, rssFromStatus, sampleTree, treeBelow } from "../src/limits/proc-tree.js";
import { limitErrorForExit, RLIMITS_ENV, rlimitsEnv, rlimitsFor } from "../src/limits/rlimits.js";
import { narrowLimits, validateResourceLimits } from "../src/limits/types.js";
import { firstExceeded, usageOf } from "../src/limits/watchdog.js";
import { buildLaunchCommand } from "../src/process/launch.js";
import { baseMountArgs, bwrapSupportsSize } from "../src/sandbox/bwrap-policy.js";
import { scratch } from "./trust-config-helpers.js";

const MIB = 1024 * 1024;
const root = scratch("res-limits-policy-");
const ext = path.join(root.dir, "ext");
mkdirSync(ext, { recursive: true });
writeFileSync(path.join(ext, "__init__.py"), "");
after(() => root.remove());

function configError(fn: () => unknown, key: string): void {
  assert.throws(fn, (e: unknown) => e instanceof ConfigError && e.key === key);
}

describe("the limits option", () => {
  it("takes every known key as a positive integer", () => {
    const limits = { memoryMiB: 512, cpuSeconds: 30, pids: 64, openFiles: 256, diskMiB: 100 };
    assert.deepEqual(validateResourceLimits(limits), limits);
    assert.deepEqual(validateExtensionOptions({ name: "x", modulePath: ext, limits }).limits, limits);
  });

  it("refuses an unknown key, a fraction, a value under the floor and a non-object, naming the key", () => {
    configError(() => validateResourceLimits({ memoryGiB: 1 }), "limits.memoryGiB");
    configError(() => validateResourceLimits({ pids: 2.5 }), "limits.pids");
    configError(() => validateResourceLimits({ memoryMiB: 1 }), "limits.memoryMiB");
    configError(() => validateResourceLimits({ openFiles: "many" }), "limits.openFiles");
    configError(() => validateResourceLimits({ cpuSeconds: -1 }), "limits.cpuSeconds");
    configError(() => validateResourceLimits([1]), "limits");
    configError(() => validateExtensionOptions({ name: "x", modulePath: ext, limits: { pids: 0 } }), "limits.pids");
  });

  it("narrows per key: the file may add or lower a limit, never raise one the code set", () => {
    assert.deepEqual(narrowLimits({ pids: 8, memoryMiB: 256 }, { pids: 1000, memoryMiB: 128, diskMiB: 10 }), {
      pids: 8,
      memoryMiB: 128,
      diskMiB: 10,
    });
    assert.deepEqual(narrowLimits(undefined, { cpuSeconds: 5 }), { cpuSeconds: 5 });
    assert.deepEqual(narrowLimits({ cpuSeconds: 5 }, undefined), { cpuSeconds: 5 });
    assert.equal(narrowLimits(undefined, undefined), undefined);
  });

  it("is a key the extension's pyisolate.yaml may set, checked with the file named", () => {
    const yaml = path.join(ext, "pyisolate.yaml");
    writeFileSync(yaml, "limits:\n  pids: 4\n  memoryMiB: 128\n");
    assert.deepEqual(readConfigFile(ext).limits, { pids: 4, memoryMiB: 128 });
    writeFileSync(yaml, "limits:\n  pids: lots\n");
    assert.throws(
      () => readConfigFile(ext),
      (e: unknown) => e instanceof ConfigError && e.key === "limits.pids" && e.file === yaml,
    );
    writeFileSync(yaml, "limits: 5\n");
    assert.throws(
      () => readConfigFile(ext),
      (e: unknown) => e instanceof ConfigError && e.key === "limits" && e.file === yaml,
    );
  });
});

describe("the kernel's layer: rlimits and bwrap's tmpfs size", () => {
  it("maps memory, CPU, open files and disk to RLIMIT_DATA, RLIMIT_CPU (hard one second later), RLIMIT_NOFILE, RLIMIT_FSIZE", () => {
    assert.deepEqual(rlimitsFor({ memoryMiB: 256, cpuSeconds: 10, openFiles: 64, diskMiB: 16, pids: 8 }), {
      RLIMIT_DATA: [256 * MIB, 256 * MIB],
      RLIMIT_CPU: [10, 11],
      RLIMIT_NOFILE: [64, 64],
      RLIMIT_FSIZE: [16 * MIB, 16 * MIB],
    });
    assert.deepEqual(rlimitsEnv({ pids: 8 }), {}, "pids has no rlimit: RLIMIT_NPROC counts every process of the uid");
  });

  it("the guest's rlimit switch is the host's: an application's env cannot set or remove it", () => {
    const command = buildLaunchCommand({
      pythonPath: "/usr/bin/python3",
      modulePath: ext,
      env: { [RLIMITS_ENV]: '{"RLIMIT_CPU":[999999,999999]}' },
    });
    assert.equal(command.env[RLIMITS_ENV], undefined);
    const limited = buildLaunchCommand({
      pythonPath: "/usr/bin/python3",
      modulePath: ext,
      env: { [RLIMITS_ENV]: "{}" },
      limits: { cpuSeconds: 3 },
    });
    assert.deepEqual(JSON.parse(limited.env[RLIMITS_ENV]!), { RLIMIT_CPU: [3, 4] });
  });

  it("sizes both of bwrap's tmpfs (/dev/shm and /tmp) with --size right before each", () => {
    const args = baseMountArgs(undefined, undefined, 16 * MIB);
    for (const mount of ["/dev/shm", "/tmp"]) {
      const at = args.findIndex((a, i) => a === "--tmpfs" && args[i + 1] === mount);
      assert.deepEqual(args.slice(at - 2, at), ["--size", String(16 * MIB)], mount);
    }
    assert.ok(!baseMountArgs(undefined).includes("--size"), "no limit, no size");
  });

  it("passes --size only to a bwrap that knows it (0.7 and later)", () => {
    assert.deepEqual(["0.8.0", "0.7.0", "1.0", "0.6.1", "0.4", undefined, "x"].map(bwrapSupportsSize), [
      true,
      true,
      true,
      false,
      false,
      false,
      false,
    ]);
  });

  it("reads SIGXCPU as the cpuSeconds limit, and only when that limit is set", () => {
    const exit = { exitCode: null, signal: "SIGXCPU" as const, stderrTail: [] };
    const error = limitErrorForExit("e", exit, { cpuSeconds: 2 });
    assert.ok(error instanceof ExtensionLimitError);
    assert.deepEqual([error.limit, error.max, error.mechanism], ["cpuSeconds", 2, "rlimit"]);
    assert.equal(limitErrorForExit("e", exit, {}), undefined);
    assert.equal(limitErrorForExit("e", { ...exit, signal: "SIGKILL" }, { cpuSeconds: 2 }), undefined);
  });
});

describe("the host's watchdog", () => {
  it("parses a stat line whose command name holds spaces and parentheses", () => {
    const stat = "42 (a) b (c)) S 7 42 42 0 -1 4194560 100 0 0 0 150 50 3 2 20 0 1 0 100 1000 10";
    assert.deepEqual(parseStat(stat), { ppid: 7, ticks: 205 });
    assert.equal(rssFromStatus("Name:\tx\nVmRSS:\t  2048 kB\n"), 2 * MIB);
    assert.equal(rssFromStatus("Name:\tzombie\n"), 0);
  });

  it("walks a tree below its root only", () => {
    const parents = new Map([
      [2, 1],
      [3, 2],
      [4, 3],
      [5, 1],
      [6, 99],
    ]);
    assert.deepEqual(treeBelow(1, parents).sort(), [2, 3, 4, 5]);
    assert.deepEqual(treeBelow(3, parents), [4]);
  });

  it("samples this very process from /proc", () => {
    const sample = sampleTree(process.pid)!;
    assert.ok(
      sample.processes >= 1 && sample.rssBytes > MIB && sample.openFiles > 2 && sample.cpuSeconds > 0,
      JSON.stringify(sample),
    );
    assert.equal(sampleTree(2 ** 22 + 1), undefined, "a pid that cannot exist");
  });

  it("counts the descriptors of the tree below the sandbox's own levels only, each process at most its own limit", async () => {
    // A parent that opens 20 descriptors (the sandbox's stand-in) after starting a child that holds its 3 standard ones.
    const { spawn } = await import("node:child_process");
    const parent = spawn(
      "bash",
      ["-c", "sleep 30 </dev/null >/dev/null 2>&1 & for i in $(seq 20); do exec {x}</dev/null; done; wait"],
      { stdio: "ignore" },
    );
    try {
      const held = (hostLevels?: number) => sampleTree(parent.pid!, { openFiles: true, hostLevels })!.openFiles;
      for (let i = 0; i < 100 && (sampleTree(parent.pid!)!.processes < 2 || held() < 23); i++)
        await new Promise((r) => setTimeout(r, 50));
      const whole = held();
      const below = held(1);
      assert.ok(whole >= below + 20, `the whole tree holds ${whole}, below the first level ${below}`);
      assert.ok(below >= 3 && below < 20, `the child holds its 3 standard descriptors: ${below}`);
      assert.equal(
        sampleTree(parent.pid!, { openFiles: true, openFilesEach: 2 })!.openFiles,
        4,
        "each member counts at most 2",
      );
    } finally {
      parent.kill("SIGKILL");
      spawn("pkill", ["-KILL", "-P", String(parent.pid)]);
    }
  });

  it("does not count the sandbox's own processes as the extension's pids, and stops at the first limit passed", () => {
    const usage = usageOf({ processes: 3, rssBytes: 300 * MIB, cpuSeconds: 1.234, openFiles: 40 }, 2);
    assert.deepEqual(usage, { memoryMiB: 300, cpuSeconds: 1.23, pids: 1, openFiles: 40 });
    assert.equal(firstExceeded(usage, { pids: 1, memoryMiB: 300 }), undefined, "at the limit is not past it");
    assert.deepEqual(firstExceeded(usage, { memoryMiB: 256, openFiles: 10 }), {
      limit: "memoryMiB",
      value: 300,
      max: 256,
    });
  });

  it("measures a folder by its blocks and never follows a symlink out of it", async () => {
    const dir = path.join(root.dir, "disk");
    mkdirSync(path.join(dir, "sub"), { recursive: true });
    writeFileSync(path.join(dir, "sub", "f"), Buffer.alloc(2 * MIB, 1));
    const big = path.join(root.dir, "big");
    mkdirSync(big);
    writeFileSync(path.join(big, "g"), Buffer.alloc(8 * MIB, 1));
    const { symlinkSync } = await import("node:fs");
    symlinkSync(big, path.join(dir, "link"));
    const { bytes, truncated } = await diskUsage(dir);
    assert.ok(bytes >= 2 * MIB && bytes < 3 * MIB, `${bytes}`);
    assert.equal(truncated, false);
    assert.equal((await diskUsage(dir, 1)).truncated, true);
  });
});
