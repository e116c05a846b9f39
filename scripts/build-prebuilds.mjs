#!/usr/bin/env node
// Builds the tensor addon with npm's node-gyp and stores it as this platform's prebuilt (run: npm run build:prebuilds).

import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const nativeUrl = new URL("../dist/tensor/native-paths.js", import.meta.url);

// npm passes the node-gyp it bundles and the nodedir of its config to scripts; a bare node-gyp would download
// Node's headers, which fails offline.
const nodeGyp = process.env.npm_config_node_gyp;
if (!nodeGyp) {
  process.stderr.write("build-prebuilds: run me through npm (npm run build:prebuilds): npm passes node-gyp and nodedir\n");
  process.exit(2);
}
if (process.platform !== "linux") {
  process.stderr.write(`build-prebuilds: only Linux binaries are built (this is ${process.platform})\n`);
  process.exit(2);
}

const { detectLibc, localBuildPath, prebuiltPath } = await import(nativeUrl.href).catch(() => {
  process.stderr.write("build-prebuilds: dist/ is missing; run npm run build first\n");
  process.exit(2);
});

execFileSync(process.execPath, [nodeGyp, "rebuild", "--release", "--directory", "native"], { cwd: root, stdio: "inherit" });

const built = localBuildPath(root);
const target = prebuiltPath(root, process.platform, process.arch, detectLibc());
mkdirSync(dirname(target), { recursive: true });
copyFileSync(built, target);
// Symbols and debug sections are most of an unstripped addon; the exported napi_register_module_v1 stays.
execFileSync("strip", ["--strip-unneeded", target], { stdio: "inherit" });

const addon = createRequire(import.meta.url)(target);
if (typeof addon.abiVersion !== "number") throw new Error(`build-prebuilds: ${target} loaded without an abiVersion`);
const glibc = execFileSync("objdump", ["-T", target], { encoding: "utf8" }).match(/GLIBC_[0-9.]+/g) ?? [];
const newest = [...new Set(glibc)].sort((a, b) => compareVersions(a.slice(6), b.slice(6))).at(-1) ?? "none";
process.stdout.write(
  `build-prebuilds: ${relative(root, target)}: ${statSync(target).size} bytes, addon ABI ${addon.abiVersion}, needs ${newest}\n`,
);

function compareVersions(a, b) {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
