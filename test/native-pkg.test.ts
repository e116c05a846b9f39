// The packed package: its file list and metadata, an offline install without a compiler, CJS/ESM/TypeScript consumers.

import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { fixture, SHARED_VENV_ROOT } from "./helpers.js";
import { NUMPY } from "./tensor-helpers.js";

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, "..");
const TSC = join(ROOT, "node_modules", "typescript", "bin", "tsc");
const NPM_CLI = join(process.execPath, "..", "..", "lib", "node_modules", "npm", "bin", "npm-cli.js");
/** What the checkout holds that the copy for packing leaves out: installed modules, build output, git metadata. */
const NOT_STAGED = new Set(["node_modules", "dist", ".git", ".venvs", ".tmp"]);

/** Every package the lockfile installs for production (not dev-only): what an app that installs pyisolate gets. */
function runtimeDependencyClosure(): string[] {
  const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as {
    packages: Record<string, { dev?: boolean }>;
  };
  return Object.entries(lock.packages)
    .filter(
      ([key, entry]) =>
        key.startsWith("node_modules/") && !entry.dev && !key.slice("node_modules/".length).includes("/node_modules/"),
    )
    .map(([key]) => key.slice("node_modules/".length));
}

/** Runs npm (the one beside this Node) with a private cache: the test needs neither the user's cache nor the network. */
function npm(args: string[], cwd: string, cache: string, env: NodeJS.ProcessEnv = process.env) {
  return run(process.execPath, [NPM_CLI, ...args, "--cache", cache, "--no-audit", "--no-fund", "--loglevel", "warn"], {
    cwd,
    env,
    maxBuffer: 64 << 20,
  });
}

/** The consumer app: it loads a numpy extension, sends a tensor and reports what the guest saw and what Node warned. */
function consumer(kind: "cjs" | "esm", loads = 1): string {
  const head =
    kind === "cjs"
      ? `const { ExtensionManager, Tensor } = require("pyisolate"); const resolved = require.resolve("pyisolate");`
      : `import { ExtensionManager, Tensor } from "pyisolate"; const resolved = import.meta.resolve("pyisolate");`;
  return `${head}
const warnings = [];
process.on("warning", (w) => warnings.push(w.code ?? w.name));
async function main() {
  const infos = [];
  for (let i = 0; i < ${loads}; i++) {
    const manager = new ExtensionManager({ venvRoot: ${JSON.stringify(SHARED_VENV_ROOT)}, forwardOutput: false });
    try {
      const ext = await manager.load({ name: "native_pkg_np", modulePath: ${JSON.stringify(fixture("tensor_ext"))}, dependencies: ${JSON.stringify(NUMPY)}, sandbox: { mode: "disabled" } });
      const t = Tensor.from(new Float32Array([1, 2, 3, 4]), [2, 2]);
      infos.push({ info: await ext.call("info", [t]), values: await ext.call("values", [t]), kind: t.segment.kind });
    } finally {
      await manager.close();
    }
  }
  await new Promise((r) => setImmediate(r));
  console.log(JSON.stringify({ resolved: String(resolved), infos, warnings }));
}
main().catch((e) => { console.error(e); process.exit(1); });
`;
}

describe("the packed package", { timeout: 600_000 }, () => {
  const work = mkdtempSync(join(tmpdir(), "native-pkg-"));
  const stage = join(work, "stage");
  const app = join(work, "app");
  const cache = join(work, "npm-cache");
  let tarball = "";
  let packed: { files: { path: string }[] } = { files: [] };
  const nodes: { label: string; path: string; skip?: string }[] = [
    { label: `Node ${process.versions.node}`, path: process.execPath },
  ];

  before(async () => {
    // A copy of the checkout with its own dist: packing never touches the checkout's dist, which other tests use.
    // Entry by entry: the temp folder may itself lie inside the checkout (TMPDIR=./tmp).
    for (const entry of readdirSync(ROOT)) {
      const from = join(ROOT, entry);
      if (NOT_STAGED.has(entry) || work.startsWith(`${from}/`)) continue;
      cpSync(from, join(stage, entry), {
        recursive: true,
        verbatimSymlinks: true,
        filter: (src) => !relative(ROOT, src).startsWith("bench/.work"),
      });
    }
    symlinkSync(join(ROOT, "node_modules"), join(stage, "node_modules"));
    // What must stay out even where it exists: a bytecode cache, a local build of the addon.
    mkdirSync(join(stage, "python", "pyisolate", "__pycache__"), { recursive: true });
    writeFileSync(join(stage, "python", "pyisolate", "__pycache__", "x.cpython-311.pyc"), "");
    mkdirSync(join(stage, "native", "build", "Release"), { recursive: true });
    writeFileSync(join(stage, "native", "build", "Release", "pyisolate_native.node"), "");
    await run(process.execPath, [TSC, "-p", "tsconfig.json"], { cwd: stage });
    packed = JSON.parse((await npm(["pack", "--dry-run", "--json", "--ignore-scripts"], stage, cache)).stdout)[0];
    await npm(["pack", "--ignore-scripts", "--pack-destination", work], stage, cache);
    tarball = join(work, "pyisolate-0.1.0.tgz");
    // The package's runtime dependencies (and theirs, from the lockfile) come packed from the checkout's node_modules,
    // so the install needs no registry.
    const dependencies: Record<string, string> = {};
    for (const name of runtimeDependencyClosure()) {
      const { stdout } = await npm(
        ["pack", "--ignore-scripts", "--json", "--pack-destination", work],
        join(ROOT, "node_modules", name),
        cache,
      );
      dependencies[name] = `file:../${JSON.parse(stdout)[0].filename}`;
    }
    mkdirSync(app);
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, dependencies }));
    try {
      const { stdout } = await run(
        process.execPath,
        [NPM_CLI, "exec", "-y", "node@22", "--", "-p", "process.execPath"],
        { cwd: work, timeout: 120_000 },
      );
      nodes.push({ label: "Node 22", path: stdout.trim() });
    } catch (error) {
      nodes.push({
        label: "Node 22",
        path: "",
        skip: `Node 22 is not available here (npx node@22 failed: ${(error as Error).message.split("\n")[0]})`,
      });
    }
  });
  after(() => execFileSync("rm", ["-rf", work]));

  test("npm pack ships dist, the Python runtime, the prebuilt addon and LICENSE, and leaves out tests, maps, caches and builds", () => {
    const files = packed.files.map((f) => f.path);
    for (const needed of [
      "LICENSE",
      "README.md",
      "package.json",
      "dist/index.js",
      "dist/index.cjs",
      "dist/index.d.ts",
      "dist/cli.js",
      "dist/tensor/native.js",
      "python/pyisolate/__init__.py",
      "python/pyisolate/_guest/bootstrap.py",
      "prebuilds/linux-x64/pyisolate_native.glibc.node",
      "prebuilds/linux-arm64/pyisolate_native.glibc.node",
      "native/binding.gyp",
      "native/src/addon.c",
      "scripts/install-native.mjs",
    ]) {
      assert.ok(files.includes(needed), `${needed} is in the package`);
    }
    const unwanted = files.filter((f) =>
      /(^|\/)(test|tests|__pycache__|fixtures|node_modules)\/|\.map$|\.pyc$|^native\/build\/|^src\/|^bench\/|^examples\//.test(
        f,
      ),
    );
    assert.deepEqual(unwanted, []);
    // Nothing beyond what the "files" list names: per source module its .js and .d.ts, the Python runtime, the docs,
    // and a handful of others (a fixed number broke as the package grew by modules).
    const count = (dir: string, pattern: RegExp): number =>
      (readdirSync(join(ROOT, dir), { recursive: true }) as string[]).filter((f) => pattern.test(f)).length;
    const expected = 2 * count("src", /\.[cm]?ts$/) + count("python/pyisolate", /\.py$/) + count("docs", /./) + 20;
    assert.ok(files.length <= expected, `${files.length} files, at most ${expected} expected`);
  });

  test("the packed package.json says Linux, MIT, where the code and the bugs are, and has both module entries", () => {
    const meta = JSON.parse(execFileSync("tar", ["-xzOf", tarball, "package/package.json"], { encoding: "utf8" }));
    assert.deepEqual(meta.os, ["linux"]);
    assert.equal(meta.license, "MIT");
    assert.match(meta.repository.url, /^git\+https:\/\/github\.com\/.+\.git$/);
    assert.match(meta.bugs.url, /^https:\/\/github\.com\/.+\/issues$/);
    assert.match(meta.homepage, /^https:\/\//);
    assert.deepEqual(meta.exports["."], {
      types: "./dist/index.d.ts",
      require: "./dist/index.cjs",
      default: "./dist/index.js",
    });
    assert.equal(
      meta.scripts.prepare,
      undefined,
      "no prepare script: it would run at every install from git and in checkouts",
    );
    assert.equal(meta.scripts.install, "node scripts/install-native.mjs");
    assert.match(readFileSync(join(ROOT, "LICENSE"), "utf8"), /^MIT License/);
  });

  test("an app installs the tarball offline with no compiler on PATH, and the install builds nothing", async () => {
    // PATH holds node and sh only: no cc, gcc, make or python, so node-gyp could not build even if it tried.
    const bin = join(work, "bin");
    mkdirSync(bin);
    symlinkSync(process.execPath, join(bin, "node"));
    symlinkSync("/bin/sh", join(bin, "sh"));
    const env = { ...process.env, PATH: bin };
    const { stdout, stderr } = await npm(["install", tarball, "--offline", "--foreground-scripts"], app, cache, env);
    assert.match(stdout, /> pyisolate@0\.1\.0 install\n> node scripts\/install-native\.mjs/, "the install hook ran");
    assert.doesNotMatch(stderr, /local build failed|gyp/);
    const installed = join(app, "node_modules", "pyisolate");
    assert.ok(existsSync(join(installed, "prebuilds", "linux-x64", "pyisolate_native.glibc.node")));
    assert.equal(
      existsSync(join(installed, "native", "build")),
      false,
      "no local build: the prebuilt is the only addon",
    );
  });

  for (const kind of ["cjs", "esm"] as const) {
    test(`${kind === "cjs" ? "a CommonJS" : "an ES module"} consumer loads an extension and shares tensors through the prebuilt addon`, async (t) => {
      const file = join(app, kind === "cjs" ? "consumer.cjs" : "consumer.mjs");
      writeFileSync(file, consumer(kind));
      for (const node of nodes) {
        await t.test(node.label, { skip: node.skip ?? false }, async () => {
          const { stdout } = await run(node.path, [file], { cwd: app, timeout: 300_000 });
          const report = JSON.parse(stdout);
          const entry = kind === "cjs" ? "dist/index.cjs" : "dist/index.js";
          assert.ok(String(report.resolved).endsWith(`node_modules/pyisolate/${entry}`), report.resolved);
          assert.deepEqual(report.infos, [
            {
              info: { type: "numpy", dtype: "float32", shape: [2, 2], strides: [2, 1], writeable: true, shared: true },
              values: [1, 2, 3, 4],
              kind: "memfd",
            },
          ]);
          assert.deepEqual(report.warnings, []);
        });
      }
    });
  }

  test("require and import give the same module: one copy of each class, so instanceof holds across both", async () => {
    writeFileSync(
      join(app, "same.cjs"),
      `import("pyisolate").then((esm) => { const cjs = require("pyisolate");
      console.log(JSON.stringify([cjs.ExtensionManager === esm.ExtensionManager, cjs.RemoteError === esm.RemoteError, Object.keys(cjs).length === Object.keys(esm).length])); });`,
    );
    const { stdout } = await run(process.execPath, [join(app, "same.cjs")], { cwd: app });
    assert.deepEqual(JSON.parse(stdout), [true, true, true]);
  });

  test("strict TypeScript compiles against the package as CommonJS and as ESM, and rejects a wrong option type", async () => {
    const dir = join(app, "ts");
    mkdirSync(dir);
    writeFileSync(
      join(dir, "consumer.cts"),
      `import pyisolate = require("pyisolate");
const manager: pyisolate.ExtensionManager = new pyisolate.ExtensionManager({ venvRoot: "./.venvs" });
const tensor: pyisolate.Tensor = pyisolate.Tensor.zeros([2], "float32");
export = { manager, tensor };
`,
    );
    writeFileSync(
      join(dir, "consumer.mts"),
      `import { ExtensionManager, Tensor, type Extension } from "pyisolate";
export const manager = new ExtensionManager({ venvRoot: "./.venvs" });
export const load = (): Promise<Extension> => manager.load({ name: "x", modulePath: "./x" });
export const tensor: Tensor = Tensor.zeros([2], "float32");
`,
    );
    writeFileSync(
      join(dir, "wrong.mts"),
      `import { ExtensionManager } from "pyisolate";\nexport const m = new ExtensionManager({ venvRoot: 42 });\n`,
    );
    const flags = [
      "--noEmit",
      "--strict",
      "--module",
      "nodenext",
      "--moduleResolution",
      "nodenext",
      "--target",
      "es2022",
      "--skipLibCheck",
      "--types",
      "node",
      "--typeRoots",
      join(ROOT, "node_modules", "@types"),
    ];
    await run(process.execPath, [TSC, ...flags, "ts/consumer.cts", "ts/consumer.mts"], { cwd: app });
    const wrong = await run(process.execPath, [TSC, ...flags, "ts/wrong.mts"], { cwd: app }).then(
      () => "",
      (e: { stdout: string }) => e.stdout,
    );
    assert.match(wrong, /wrong\.mts.*error TS2322: Type 'number' is not assignable to type 'string'/);
  });

  test("without any addon, tensors are copied and Node warns once, however many extensions load", async () => {
    const prebuilds = join(app, "node_modules", "pyisolate", "prebuilds");
    renameSync(prebuilds, `${prebuilds}.hidden`);
    try {
      writeFileSync(join(app, "copying.mjs"), consumer("esm", 2));
      const { stdout, stderr } = await run(process.execPath, [join(app, "copying.mjs")], {
        cwd: app,
        timeout: 300_000,
      });
      const report = JSON.parse(stdout);
      assert.deepEqual(report.warnings, ["PYISOLATE_TENSOR_COPY"]);
      assert.deepEqual(
        report.infos.map((i: { info: { shared: boolean }; kind: string }) => [i.info.shared, i.kind]),
        [
          [false, "heap"],
          [false, "heap"],
        ],
      );
      assert.match(
        stderr,
        /Warning: pyisolate: tensors are copied, not shared: the addon was not built \(no prebuilt binary for linux-x64/,
      );
      assert.equal(stderr.match(/PYISOLATE_TENSOR_COPY/g)?.length, 1);
    } finally {
      renameSync(`${prebuilds}.hidden`, prebuilds);
    }
  });
});
