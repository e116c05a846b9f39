// Demo: two extensions with conflicting numpy versions, loaded side by side, sharing one host service.
import { ExtensionManager } from "../dist/index.js";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const here = dirname(fileURLToPath(import.meta.url));
const entries = [];
const ledger = {
  // Called from Python through the Ledger ProxiedSingleton in both extensions.
  async record(source, key, value) {
    entries.push({ source, key, value });
    return entries.length;
  },
};

const progress = (event) => {
  if (event.stage !== "install") console.log(`  [env] ${event.message}`);
};

const manager = new ExtensionManager({ venvRoot: join(here, "..", ".venvs") });
manager.provide("Ledger", ledger);
try {
  console.log("Loading two extensions (the first run builds their venvs: numpy 1.26 and numpy 2.2)...");
  const started = performance.now();
  // Sandboxed: bwrap where this machine allows it, else Landlock; "preferred" runs the demo (with a warning that
  // says how to fix it) even where neither can. Production code keeps the default, "required".
  const sandbox = { mode: "preferred" };
  const [legacy, modern] = await Promise.all([
    manager.load({
      name: "legacy_stats",
      modulePath: join(here, "extensions", "legacy_stats"),
      sandbox,
      onProgress: progress,
    }),
    manager.load({
      name: "modern_stats",
      modulePath: join(here, "extensions", "modern_stats"),
      sandbox,
      onProgress: progress,
    }),
  ]);
  console.log(`Both ready in ${Math.round(performance.now() - started)} ms (pids ${legacy.pid} and ${modern.pid}).`);
  console.log(
    `Sandbox: ${legacy.sandbox.backend}${legacy.sandbox.degraded ? " (degraded)" : ""}, restriction model "${legacy.sandbox.model}".\n`,
  );

  for (const ext of [legacy, modern]) {
    ext.on("progress", (payload) => console.log(`  event from ${payload.extension}: ${payload.items} items received`));
    const info = await ext.proxy.numpy_version();
    console.log(`${ext.name}: numpy ${info.numpy} (np.float_ alias present: ${info.has_float_alias})`);
  }

  const data = Array.from({ length: 1000 }, (_, i) => Math.sin(i / 10) * 50 + i / 20);
  console.log("\nSending 1000 numbers to each extension...");
  const legacySummary = await legacy.call("summarize", [data]);
  const modernSummary = await modern.proxy.summarize(data);
  console.log("legacy_stats.summarize ->", legacySummary);
  console.log("modern_stats.summarize ->", modernSummary);
  console.log("modern_stats.normalize([3, 5, 7]) ->", await modern.proxy.normalize([3, 5, 7]));
  console.log("\nHost Ledger service received:", entries);

  const versions = [await legacy.proxy.numpy_version(), await modern.proxy.numpy_version()].map((v) => v.numpy);
  if (!versions[0].startsWith("1.") || !versions[1].startsWith("2.")) {
    console.error(`unexpected numpy versions: ${versions.join(", ")}`);
    process.exitCode = 1;
  }
  console.log("\nDone: two numpy majors ran side by side in one application.");
} finally {
  await manager.close();
}
