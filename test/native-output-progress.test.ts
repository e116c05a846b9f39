// Install progress: real installs report elapsed time and the installer's counts; the CLI shows lines or a bar.

import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import path from "node:path";
import { after, before, describe, it, mock } from "node:test";
import { promisify } from "node:util";
import {
  ensureEnvironment,
  findUv,
  resolvePython,
  type EnvironmentSpec,
  type ProgressEvent,
} from "../src/env/builder.js";
import { InstallProgress, readInstallerLine, TICK_MS } from "../src/env/install-progress.js";
import { ExtensionManager, type Logger } from "../src/index.js";
import { progressLogger } from "../src/output/progress-log.js";
import { fixture, TEST_DIR } from "./helpers.js";
import { fixtureIndex, tempRoot } from "./fixtures/env/helpers.js";

const exec = promisify(execFile);
const CLI = path.join(TEST_DIR, "..", "src", "cli.ts");
const root = tempRoot("native-output-progress-");
let base: Omit<EnvironmentSpec, "name" | "dependencies">;

before(async () => {
  const index = fixtureIndex(path.join(root.dir, "index"), ["1.0"]);
  const python = await resolvePython(undefined);
  base = {
    venvRoot: path.join(root.dir, "venvs"),
    python: python.path,
    indexUrl: index.indexUrl,
    runtimeVersion: "0.1.0-test",
  };
});
after(() => root.remove());

describe("a real install from the local index", () => {
  for (const backend of ["uv", "pip"] as const) {
    it(`with ${backend}: events carry the elapsed time, and the last one the packages resolved and installed`, async (t) => {
      if (backend === "uv" && !(await findUv())) return t.skip("uv is not on PATH");
      const events: ProgressEvent[] = [];
      await ensureEnvironment({
        ...base,
        name: `progress_${backend}`,
        installer: backend,
        dependencies: ["pyisolate-fixture-hello==1.0"],
        onProgress: (e) => events.push(e),
      });
      const timed = events.filter((e) => e.stage === "install" && e.elapsedMs !== undefined);
      assert.ok(timed.length > 0, JSON.stringify(events));
      assert.ok(timed.every((e, i) => e.elapsedMs! >= 0 && (i === 0 || e.elapsedMs! >= timed[i - 1]!.elapsedMs!)));
      const last = timed.at(-1)!;
      assert.match(
        last.message,
        /^installed pyisolate-fixture-hello==1\.0 \([\d.]+ s, 1 package resolved, .*1 installed\)$/,
      );
      assert.deepEqual(
        { packages: last.counts?.packages, installed: last.counts?.installed },
        { packages: 1, installed: 1 },
      );
    });
  }
});

/** A logger that keeps what it is told, by level. */
function recordingLogger(): Logger & { lines: Record<string, string[]> } {
  const lines: Record<string, string[]> = { debug: [], info: [], warn: [], error: [] };
  const at = (level: string) => (message: string) => void lines[level]!.push(message);
  return { lines, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

describe("the logger's share", () => {
  it("a load tells its logger the stages and the install summary at info, the installer's lines at debug", async () => {
    const logger = recordingLogger();
    const manager = new ExtensionManager({ venvRoot: path.join(root.dir, "logged"), logger, forwardOutput: false });
    try {
      await manager.load({
        name: "native_output_logged",
        modulePath: fixture("native_output_print"),
        dependencies: ["pyisolate-fixture-hello==1.0"],
        indexUrl: base.indexUrl,
      });
    } finally {
      await manager.close();
    }
    assert.ok(
      logger.lines.info!.includes("[native_output_logged] installing pyisolate-fixture-hello==1.0"),
      logger.lines.info!.join("\n"),
    );
    assert.ok(
      logger.lines.info!.some((l) => /^\[native_output_logged\] installed pyisolate-fixture-hello==1\.0 \(/.test(l)),
    );
    assert.ok(logger.lines.debug!.some((l) => /^\[native_output_logged\] .*pyisolate-fixture-hello/.test(l)));
    assert.deepEqual(logger.lines.warn, []);
  });

  it("warnings go to warn, twenty at most per load, then one line saying the rest go to debug", () => {
    const logger = recordingLogger();
    const log = progressLogger("x", logger);
    for (let i = 0; i < 25; i++) log({ stage: "install", message: `install proxy: refused GET /${i}`, warning: true });
    assert.equal(logger.lines.warn!.length, 21);
    assert.equal(logger.lines.warn!.at(-1), "[x] more install warnings; the rest go to debug");
    assert.equal(logger.lines.debug!.length, 4);
  });
});

describe("the tick", () => {
  it("comes every second while the installer says nothing, with the elapsed time and the counts so far", () => {
    mock.timers.enable({ apis: ["setInterval", "Date"], now: 0 });
    try {
      const events: ProgressEvent[] = [];
      const progress = new InstallProgress("torch==2.13.0", (e) => events.push(e));
      progress.line("Downloading torch (180.5MiB)");
      for (let i = 0; i < 5; i++) mock.timers.tick(TICK_MS);
      progress.stop(false);
      mock.timers.tick(5 * TICK_MS);
      const ticks = events.filter((e) => e.tick);
      assert.deepEqual(
        ticks.map((e) => e.elapsedMs),
        [1000, 2000, 3000, 4000, 5000],
      );
      assert.equal(ticks[1]!.message, "installing torch==2.13.0: 2.0 s, 1 to download (180.5 MiB)");
      assert.equal(ticks[1]!.counts?.bytes, Math.round(180.5 * 1024 * 1024));
    } finally {
      mock.timers.reset();
    }
  });

  it("reads uv's and pip's own lines into counts", () => {
    const uv = [
      "Resolved 3 packages in 365ms",
      "Downloading numpy (16.0MiB)",
      " Downloaded numpy",
      "Installed 3 packages in 179ms",
    ].reduce(readInstallerLine, {});
    assert.deepEqual(uv, { packages: 3, downloads: 1, bytes: 16 * 1024 * 1024, installed: 3 });
    const pip = [
      "Collecting numpy==2.2.6",
      "  Downloading numpy-2.2.6-cp311-cp311-manylinux_2_17_x86_64.whl (16.4 MB)",
      "Collecting six",
      "Installing collected packages: six, numpy",
      "Successfully installed numpy-2.2.6 six-1.16.0",
    ].reduce(readInstallerLine, {});
    assert.deepEqual(pip, { packages: 2, downloads: 1, bytes: 16_400_000, installed: 2 });
  });
});

describe("pyisolate run's progress", () => {
  const args = (venvRoot: string) => [
    "run",
    fixture("native_output_print"),
    "shout",
    '["p"]',
    "--venv-root",
    venvRoot,
    "--name",
    "native_output_progress",
    "--dep",
    "pyisolate-fixture-hello==1.0",
    "--index-url",
    base.indexUrl!,
  ];

  it("is plain lines on a pipe: stage lines, installer lines, the install summary; nothing else", async () => {
    const { stdout, stderr } = await exec(
      process.execPath,
      ["--import", "tsx", CLI, ...args(path.join(root.dir, "cli-plain"))],
      { cwd: TEST_DIR },
    );
    assert.equal(stdout, '"P"\n');
    const lines = stderr.trimEnd().split("\n");
    for (const line of lines) assert.match(line, /^(pyisolate: | {2}\| |\[native_output_progress\] )/, line);
    assert.ok(lines.includes("pyisolate: installing pyisolate-fixture-hello==1.0"), stderr);
    assert.ok(
      lines.some((l) =>
        /^pyisolate: installed pyisolate-fixture-hello==1\.0 \([\d.]+ s, 1 package resolved, .*1 installed\)$/.test(l),
      ),
      stderr,
    );
    assert.doesNotMatch(stderr, /\x1b\[/, "no terminal escapes in a log");
  });

  it("is a progress bar on a terminal", async (t) => {
    const script = spawnSync("script", ["--version"]);
    if (script.error) return t.skip("util-linux script(1) is not installed: no pseudo-terminal to run the CLI on");
    const command = [process.execPath, "--import", "tsx", CLI, ...args(path.join(root.dir, "cli-tty"))]
      .map((a) => `'${a.replaceAll("'", `'\\''`)}'`)
      .join(" ");
    const { stdout } = await exec("script", ["-qec", command, "/dev/null"], { cwd: TEST_DIR });
    assert.match(stdout, /installing \[[█░]+\] 1\/1 packages +\| \d+s/);
    assert.match(stdout, /"P"/);
  });
});
