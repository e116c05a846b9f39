#!/usr/bin/env node
// Builds the tensor addon with npm's node-gyp and stores it as a prebuilt (npm run build:native [-- --arch arm64 --node P]).

import { execFileSync } from "node:child_process";
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
/** Debian's cross toolchains and the qemu-user binary that runs each target's Node here. */
const CROSS = { arm64: { prefix: "aarch64-linux-gnu-", qemu: "qemu-aarch64", sysroot: "/usr/aarch64-linux-gnu" } };
/** Loads the addon and moves a byte through a sealed memfd and two mappings: what the host relies on. */
const PROBE = `const a = require(process.argv[1]); const fd = a.memfdCreate("probe", 4096);
new Uint8Array(a.mmap(fd, 4096))[0] = 7; const ok = new Uint8Array(a.mmap(fd, 4096))[0] === 7 && a.fstatSize(fd) === 4096;
console.log(JSON.stringify({ abi: a.abiVersion, ok }));`;

const fail = (message) => {
  process.stderr.write(`build-prebuilds: ${message}\n`);
  process.exit(2);
};
const { values } = parseArgs({
  options: { arch: { type: "string", default: process.arch }, node: { type: "string" } },
});
const arch = values.arch;
const cross = arch === process.arch ? undefined : CROSS[arch];
// npm passes the node-gyp it bundles and the nodedir of its config to scripts; a bare node-gyp would download
// Node's headers, which fails offline.
const nodeGyp = process.env.npm_config_node_gyp;
if (!nodeGyp) fail("run me through npm (npm run build:native): npm passes node-gyp and nodedir");
if (process.platform !== "linux") fail(`only Linux binaries are built (this is ${process.platform})`);
if (arch !== process.arch && !cross)
  fail(`no cross toolchain known for ${arch} (known: ${Object.keys(CROSS).join(", ")})`);
if (cross && !values.node)
  fail(
    `--node: a ${arch} Node binary to load the build with under ${cross.qemu} (npm pack node-linux-${arch}@${process.versions.node})`,
  );

// Cross builds happen in a copy, so native/build keeps this machine's own build.
const dir = cross ? mkdtempSync(join(tmpdir(), "pyisolate-prebuild-")) : root;
if (cross)
  cpSync(join(root, "native"), join(dir, "native"), {
    recursive: true,
    filter: (src) => !src.includes("/native/build"),
  });
const tools = cross
  ? { CC: `${cross.prefix}gcc`, CXX: `${cross.prefix}g++`, LINK: `${cross.prefix}gcc`, AR: `${cross.prefix}ar` }
  : {};
execFileSync(process.execPath, [nodeGyp, "rebuild", "--release", `--arch=${arch}`, "--directory", "native"], {
  cwd: dir,
  stdio: "inherit",
  env: { ...process.env, ...tools },
});

// This machine's libc: the toolchains here all target glibc.
const target = join(root, "prebuilds", `linux-${arch}`, "pyisolate_native.glibc.node");
mkdirSync(dirname(target), { recursive: true });
copyFileSync(join(dir, "native", "build", "Release", "pyisolate_native.node"), target);
if (cross) rmSync(dir, { recursive: true, force: true });
// Symbols and debug sections are most of an unstripped addon; the exported napi_register_module_v1 stays.
execFileSync(`${cross?.prefix ?? ""}strip`, ["--strip-unneeded", target], { stdio: "inherit" });

const probe = cross
  ? execFileSync(cross.qemu, ["-L", cross.sysroot, values.node, "-e", PROBE, target], { encoding: "utf8" })
  : execFileSync(values.node ?? process.execPath, ["-e", PROBE, target], { encoding: "utf8" });
const { abi, ok } = JSON.parse(probe);
if (!ok) fail(`${target} loaded but a memfd round trip failed`);
const symbols =
  execFileSync(`${cross?.prefix ?? ""}objdump`, ["-T", target], { encoding: "utf8" }).match(/GLIBC_[0-9.]+/g) ?? [];
const newest = [...new Set(symbols)].sort((a, b) => compareVersions(a.slice(6), b.slice(6))).at(-1) ?? "none";
process.stdout.write(
  `build-prebuilds: ${relative(root, target)}: ${statSync(target).size} bytes, addon ABI ${abi}, needs ${newest}\n`,
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
