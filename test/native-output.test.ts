// Output routing: an extension's prints never reach the host's stdout; they go to stderr, the logger and the events.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import type { Logger, SandboxOptions } from "../src/index.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import type { SandboxCapabilities } from "../src/sandbox/types.js";
import { fixture, makeManager, SHARED_VENV_ROOT, TEST_DIR } from "./helpers.js";
import { SANDBOX_MODES, unavailableMode } from "./sandbox-modes.js";

const exec = promisify(execFile);
const INDEX = join(TEST_DIR, "..", "src", "index.ts");

/** A logger that keeps what it is told, by level. */
function recordingLogger(): Logger & { lines: Record<string, string[]> } {
  const lines: Record<string, string[]> = { debug: [], info: [], warn: [], error: [] };
  const at = (level: string) => (message: string) => void lines[level]!.push(message);
  return { lines, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

/** A host application with default options: loads the printing extension, calls it, lets it crash, prints nothing. */
function hostScript(name: string, sandbox: SandboxOptions): string {
  return `
    import { ExtensionManager } from ${JSON.stringify(INDEX)};
    const m = new ExtensionManager({ venvRoot: ${JSON.stringify(SHARED_VENV_ROOT)} });
    const e = await m.load({ name: ${JSON.stringify(name)}, modulePath: ${JSON.stringify(fixture("native_output_print"))}, sandbox: ${JSON.stringify(sandbox)} });
    const events = [];
    e.on("stdout", (line) => events.push(line));
    if ((await e.call("shout", ["hi"])) !== "HI") process.exit(10);
    await e.call("die").then(() => process.exit(11), () => {});
    await m.close();
    if (!events.includes("stdout says hi")) process.exit(12);
  `;
}

let caps: SandboxCapabilities;
before(async () => {
  caps = await detectSandbox();
});

for (const mode of SANDBOX_MODES) {
  describe(`with ${mode.label}`, () => {
    it("a host whose extension prints keeps an empty stdout; the lines reach stderr prefixed with the name", async (t) => {
      const why = unavailableMode(caps, mode.sandbox);
      if (why) return t.skip(why);
      const name = `native_output_host_${mode.tag}`;
      const env = { ...process.env };
      delete env.PYISOLATE_LOG_LEVEL;
      const { stdout, stderr } = await exec(
        process.execPath,
        ["--import", "tsx", "--input-type=module", "-e", hostScript(name, mode.sandbox)],
        {
          cwd: join(TEST_DIR, ".."),
          env,
        },
      );
      assert.equal(stdout, "");
      assert.match(stderr, new RegExp(`^\\[${name}\\] loaded and printing on stdout$`, "m"));
      assert.match(stderr, new RegExp(`^\\[${name}\\] stdout says hi$`, "m"));
      assert.match(stderr, new RegExp(`^\\[${name}\\] stderr says hi$`, "m"));
      // Quiet by default: no info line for the load, no error line for the crash (the rejection carried it).
      assert.doesNotMatch(stderr, /pyisolate (info|error):/);
    });
  });
}

describe("with an application logger", () => {
  const manager = makeManager({ forwardOutput: true, logger: recordingLogger() });
  after(() => manager.close());

  it("extension lines go to the load's logger info, and still to the stdout and stderr events", async () => {
    const logger = recordingLogger();
    const ext = await manager.load({
      name: "native_output_logger",
      modulePath: fixture("native_output_print"),
      sandbox: { mode: "disabled" },
      logger,
    });
    const events: string[] = [];
    ext.on("stderr", (line: string) => events.push(line));
    assert.equal(await ext.call("shout", ["ho"]), "HO");
    await ext.stop();
    assert.ok(logger.lines.info!.includes("[native_output_logger] stdout says ho"), logger.lines.info!.join("\n"));
    assert.ok(logger.lines.info!.includes("[native_output_logger] stderr says ho"));
    assert.ok(
      logger.lines.info!.includes(
        "[native_output_logger] sandbox disabled by configuration: the extension runs with the host user's rights",
      ),
    );
    assert.deepEqual(events, ["stderr says ho"]);
  });
});
