// Strict TypeScript consumers compiled against the package's emitted declarations: a hand-written Remote<Api>, the
// .d.ts `pyisolate types` generates for a fixture, and the loose untyped usage. `@ts-expect-error` lines prove
// that misuse fails to compile (an unused directive is itself an error).

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { promisify } from "node:util";
import { generateTypes } from "../src/types/typegen.js";
import { fixture, TEST_DIR } from "./helpers.js";

const REPO = join(TEST_DIR, "..");
const TSC = join(REPO, "node_modules", "typescript", "bin", "tsc");
const CONSUMER = join(TEST_DIR, "fixtures", "native_types_consumer");
const run = promisify(execFile);

/** Strict flags a careful application turns on, beyond `strict`. */
const STRICT = {
  strict: true,
  exactOptionalPropertyTypes: true,
  noUncheckedIndexedAccess: true,
  noImplicitOverride: true,
  noImplicitReturns: true,
  noFallthroughCasesInSwitch: true,
  useUnknownInCatchVariables: true,
  skipLibCheck: false,
};

let dir: string;
let generated: { dts: string; className: string };
/** One compile of the three consumers (tsc is slow; each test reads its own file's diagnostics). */
let consumers: { code: number; output: string };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "native-types-compile-"));
  // The package as an application sees it: its declarations, emitted from the current source.
  await run(
    process.execPath,
    [
      TSC,
      "-p",
      join(REPO, "tsconfig.json"),
      "--emitDeclarationOnly",
      "--declaration",
      "--sourceMap",
      "false",
      "--outDir",
      join(dir, "pyisolate"),
    ],
    { maxBuffer: 1 << 24 },
  );
  generated = await generateTypes(fixture("native_types_ext"));
  await writeFile(join(dir, "native_types_ext.d.ts"), generated.dts);
  for (const name of ["typed.ts", "untyped.ts", "generated.ts"]) await copyFile(join(CONSUMER, name), join(dir, name));
  consumers = await compile(["typed.ts", "untyped.ts", "generated.ts"]);
});
after(() => rm(dir, { recursive: true, force: true }));

async function compile(files: string[]): Promise<{ code: number; output: string }> {
  const tsconfig = {
    compilerOptions: {
      ...STRICT,
      target: "ES2022",
      lib: ["ES2022", "ESNext.Disposable"],
      module: "NodeNext",
      moduleResolution: "NodeNext",
      noEmit: true,
      types: ["node"],
      typeRoots: [join(REPO, "node_modules", "@types")],
      paths: { pyisolate: ["./pyisolate/index.d.ts"], "*": [join(REPO, "node_modules", "*")] },
    },
    files,
  };
  await writeFile(join(dir, "tsconfig.json"), JSON.stringify(tsconfig, null, 2));
  try {
    const { stdout } = await run(process.execPath, [TSC, "-p", join(dir, "tsconfig.json")], { maxBuffer: 1 << 24 });
    return { code: 0, output: stdout };
  } catch (error) {
    const e = error as { code: number; stdout: string };
    return { code: e.code, output: e.stdout };
  }
}

/** The diagnostics tsc gave for `file` (and for the declarations it pulls in). */
function diagnosticsOf(file: string): string[] {
  return consumers.output.split("\n").filter((line) => line.includes(file) || line.includes("pyisolate/"));
}

it("compiles a strict consumer of Remote<Api>, refusing each misuse (every @ts-expect-error is used)", () => {
  assert.deepEqual(diagnosticsOf("typed.ts"), []);
});

it("still compiles the loose untyped usage: any method, any event, ext.call, ReturnType<typeof manager.load>", () => {
  assert.deepEqual(diagnosticsOf("untyped.ts"), []);
});

it("compiles host code against the .d.ts generated from the fixture's Python type hints", () => {
  assert.equal(generated.className, "TypedExtension");
  assert.deepEqual(diagnosticsOf("generated.ts"), [], generated.dts);
  assert.equal(consumers.output.trim(), "");
  assert.equal(consumers.code, 0);
});

it("fails to compile when a refused misuse is written without its directive (the check can fail)", async () => {
  await writeFile(
    join(dir, "misuse.ts"),
    [
      'import type { Extension } from "pyisolate";',
      "declare const ext: Extension<{ mean(xs: number[]): number }, { progress: { done: number } }>;",
      'ext.on("progres", () => {});',
      'void ext.proxy.mean(["x"]);',
    ].join("\n"),
  );
  const { code, output } = await compile(["misuse.ts"]);
  assert.notEqual(code, 0);
  assert.match(output, /misuse\.ts\(3,\d+\): error TS2345/);
  assert.match(output, /misuse\.ts\(4,\d+\): error TS2345/);
});
