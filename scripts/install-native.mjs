#!/usr/bin/env node
// npm's install hook: keep the prebuilt tensor addon when it loads here, else build native/ if its sources changed.

import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);
const say = (line) => process.stderr.write(`pyisolate: ${line}\n`);

/** A prebuilt of this platform and arch that this Node loads (a musl binary fails on glibc and is skipped). */
function loadablePrebuilt() {
  const dir = join(root, "prebuilds", `${process.platform}-${process.arch}`);
  const files = existsSync(dir) ? readdirSync(dir).filter((name) => name.endsWith(".node")) : [];
  for (const name of files) {
    try {
      if (typeof require(join(dir, name)).abiVersion === "number") return join(dir, name);
    } catch {
      // not for this libc or this kernel: try the next, then a local build
    }
  }
  return undefined;
}

/** Whether native/build holds an addon newer than every source it was built from. */
function localBuildIsFresh() {
  const built = join(root, "native", "build", "Release", "pyisolate_native.node");
  if (!existsSync(built)) return false;
  const sources = [
    join(root, "native", "binding.gyp"),
    ...readdirSync(join(root, "native", "src")).map((f) => join(root, "native", "src", f)),
  ];
  const builtAt = statSync(built).mtimeMs;
  return sources.every((file) => statSync(file).mtimeMs <= builtAt);
}

const fromSource = ["1", "true"].includes(
  process.env.npm_config_build_from_source ?? process.env.PYISOLATE_BUILD_FROM_SOURCE ?? "",
);
if (!fromSource && loadablePrebuilt()) process.exit(0);
if (!fromSource && localBuildIsFresh()) process.exit(0);
if (!existsSync(join(root, "native", "binding.gyp"))) process.exit(0);

// npm gives scripts its own node-gyp and the nodedir of its config; a bare node-gyp would download Node's headers.
const nodeGyp = process.env.npm_config_node_gyp;
try {
  if (nodeGyp)
    execFileSync(process.execPath, [nodeGyp, "rebuild", "--release", "--directory", "native"], {
      cwd: root,
      stdio: ["ignore", "ignore", "pipe"],
    });
  else
    execFileSync("node-gyp", ["rebuild", "--release", "--directory", "native"], {
      cwd: root,
      stdio: ["ignore", "ignore", "pipe"],
    });
} catch (error) {
  // node-gyp's own summary ("gyp ERR! stack Error: not found: make"), else its first error line.
  const lines = String(error.stderr ?? error.message).split("\n");
  const summary = lines.map((line) => /gyp ERR! stack Error: (.+)/.exec(line)?.[1]).find(Boolean);
  const reason = summary ?? lines.find((line) => /error/i.test(line)) ?? error.message;
  say(
    `no prebuilt addon for ${process.platform}-${process.arch} and the local build failed (${reason.trim().slice(0, 200)}); tensors will be copied (npx pyisolate doctor says more)`,
  );
}
