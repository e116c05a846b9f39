// `pyisolate types` on hostile folders: links are not followed, sizes are capped, a malformed model is refused, and
// nothing in a name or docstring can add a declaration to the .d.ts; and the command line as a user runs it.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import ts from "typescript";
import { ConfigError, ProtocolError } from "../src/index.js";
import { generateTypes, readSources } from "../src/types/typegen.js";
import { parseApiModel } from "../src/types/typegen-model.js";
import { renderDts } from "../src/types/typegen-render.js";
import { fixture, TEST_DIR } from "./helpers.js";

const exec = promisify(execFile);
const CLI = join(TEST_DIR, "..", "src", "cli.ts");
const EXTENSION =
  "from pyisolate import ExtensionBase\n\nclass Ext(ExtensionBase):\n    def m(self, x: int) -> str: ...\n";

/** The kinds of the top-level statements of `dts`, after checking that it parses without a diagnostic. */
function topLevelKinds(dts: string): string[] {
  const file = ts.createSourceFile("x.d.ts", dts, ts.ScriptTarget.ES2022, true);
  const diagnostics = (file as unknown as { parseDiagnostics: ts.Diagnostic[] }).parseDiagnostics;
  assert.deepEqual(
    diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n")),
    [],
  );
  return file.statements.map((s) => ts.SyntaxKind[s.kind]!);
}

describe("reading the extension's folder", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "native-types-folder-"));
    const outside = join(dir, "outside");
    const ext = join(dir, "ext");
    await mkdir(join(outside, "pkg"), { recursive: true });
    await mkdir(join(ext, "sub"), { recursive: true });
    await mkdir(join(ext, "__pycache__"));
    await writeFile(join(outside, "secret.py"), "class Secret: ...\n");
    await writeFile(join(outside, "pkg", "more.py"), "class More: ...\n");
    await writeFile(join(ext, "__init__.py"), EXTENSION);
    await writeFile(join(ext, "sub", "helpers.py"), "X = 1\n");
    await writeFile(join(ext, "__pycache__", "cached.py"), "Y = 1\n");
    await writeFile(join(ext, "big.py"), `# ${"x".repeat(1 << 20)}\n`);
    await writeFile(join(ext, "notes.txt"), "not python\n");
    await symlink(join(outside, "secret.py"), join(ext, "linked.py"));
    await symlink(join(outside, "pkg"), join(ext, "linked_dir"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("reads only the package's own .py files: no symlink, __pycache__ or file over the cap", async () => {
    const { files, warnings } = await readSources(join(dir, "ext"));
    assert.deepEqual(
      files.map((f) => f.path),
      ["ext/__init__.py", "ext/sub/helpers.py"],
    );
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /^ext\/big\.py: skipped, .* over the limit of 1048576/);
  });

  it("generates the API of what it read, and names the class", async () => {
    const result = await generateTypes(join(dir, "ext"));
    assert.equal(result.className, "Ext");
    assert.match(result.dts, /export interface ExtApi \{\n {2}m\(x: number\): string;\n\}/);
    assert.doesNotMatch(result.dts, /Secret|More/);
  });

  it("refuses a folder with no extension class with a ConfigError naming the folder", async () => {
    const error = await generateTypes(join(dir, "outside")).catch((e: unknown) => e);
    assert.ok(error instanceof ConfigError);
    assert.match(error.message, /^cannot type .*outside: expected one ExtensionBase subclass, found 0/);
    assert.equal(error.file, join(dir, "outside"));
  });
});

describe("rendering a model made from hostile source", () => {
  const hostile = {
    className: "Evil",
    module: "evil/__init__.py",
    doc: "*/ declare global { interface Array<T> { pwned: true } } /*",
    methods: [
      { name: "constructor", doc: "", params: [], keywords: [], returns: { k: "prim", n: "string" } },
      {
        name: "run",
        doc: "line\u2028declare const x: 1;",
        keywords: [{ name: "*/ export const y = 1; /*", type: { k: "prim", n: "number" }, optional: true }],
        params: [{ name: "default", type: { k: "literal", v: '"; export const z = 1; "' }, optional: false }],
        returns: { k: "ref", n: "Promise" },
      },
      { name: "odd-name\n}", doc: "", params: [], keywords: [], returns: { k: "ref", n: "NotDeclared" } },
    ],
    types: [
      {
        kind: "interface",
        name: "Promise",
        doc: "",
        fields: [{ name: "a b", type: { k: "prim", n: "Tensor" }, optional: false }],
        extends: [],
      },
    ],
    events: [{ name: 'progress"; export {}; "', type: { k: "prim", n: "number" } }],
    warnings: [],
  };

  it("escapes every name, string and docstring: the .d.ts declares only the model's types", () => {
    const model = parseApiModel(JSON.stringify(hostile));
    assert.ok(!("error" in model));
    const dts = renderDts(model, "evil");
    assert.deepEqual(topLevelKinds(dts), [
      "ImportDeclaration",
      "InterfaceDeclaration",
      "InterfaceDeclaration",
      "InterfaceDeclaration",
    ]);
    assert.match(dts, /export interface Promise_ \{\n {2}"a b": Tensor;\n\}/, "a type may not shadow Promise");
    assert.match(dts, /run\(default_: "\\"; export const z = 1; \\""\): Promise_;/);
    assert.match(dts, /"odd-name\\n}"\(\): unknown;/, "an undeclared type is unknown");
    assert.doesNotMatch(dts, /^\s*constructor\(/m, "a name the proxy keeps local is left out");
  });

  it("refuses a malformed model with a ProtocolError", () => {
    for (const bad of [
      "not json",
      "[]",
      JSON.stringify({ ...hostile, methods: [{ name: 1 }] }),
      JSON.stringify({ ...hostile, types: [{ kind: "class", name: "X" }] }),
      JSON.stringify({ ...hostile, methods: [{ ...hostile.methods[0], returns: { k: "prim", n: "any" } }] }),
    ]) {
      assert.throws(() => parseApiModel(bad), ProtocolError, bad.slice(0, 60));
    }
  });
});

describe("the command line", () => {
  it("pyisolate types prints the .d.ts on stdout, and --out writes it to a file", async () => {
    const { stdout } = await exec(process.execPath, ["--import", "tsx", CLI, "types", fixture("native_types_ext")]);
    assert.match(stdout, /^\/\/ Generated by `pyisolate types`/);
    assert.match(stdout, /export interface TypedExtensionApi \{/);
    const dir = await mkdtemp(join(tmpdir(), "native-types-cli-"));
    try {
      const out = join(dir, "api.d.ts");
      const written = await exec(process.execPath, [
        "--import",
        "tsx",
        CLI,
        "types",
        fixture("native_types_ext"),
        "--out",
        out,
      ]);
      assert.equal(written.stdout, "");
      assert.equal(await readFile(out, "utf8"), stdout);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("pyisolate types exits 1 with the reason when the folder holds two extension classes", async () => {
    const error = (await exec(process.execPath, ["--import", "tsx", CLI, "types", fixture("two_classes")]).catch(
      (e: unknown) => e,
    )) as { code: number; stderr: string };
    assert.equal(error.code, 1);
    assert.match(
      error.stderr,
      /^pyisolate: cannot type .*two_classes: expected one ExtensionBase subclass, found 2 .*pass --class/,
    );
  });
});
