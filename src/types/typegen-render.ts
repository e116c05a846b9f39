// Renders a checked ApiModel as a .d.ts: the Api and Events interfaces for `manager.load<Api, Events>()` and the
// named types they use. Every name and string from the model is escaped or replaced: the source was hostile.

import { isLocalKey } from "./remote-proxy.js";
import type { ApiModel, MethodModel, NamedTypeModel, ParamModel, TypeNode } from "./typegen-model.js";

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;
/** Words a parameter or type may not be named, and the global types this file's own text refers to. */
const RESERVED = new Set([
  "break",
  "case",
  "catch",
  "class",
  "const",
  "continue",
  "debugger",
  "default",
  "delete",
  "do",
  "else",
  "enum",
  "export",
  "extends",
  "false",
  "finally",
  "for",
  "function",
  "if",
  "import",
  "in",
  "instanceof",
  "new",
  "null",
  "return",
  "super",
  "switch",
  "this",
  "throw",
  "true",
  "try",
  "typeof",
  "var",
  "void",
  "while",
  "with",
  "yield",
  "let",
  "static",
  "implements",
  "interface",
  "package",
  "private",
  "protected",
  "public",
  "await",
  "arguments",
  "eval",
  "type",
  "any",
  "unknown",
  "never",
  "number",
  "string",
  "boolean",
  "bigint",
  "symbol",
  "object",
  "undefined",
  "Promise",
  "Record",
  "Array",
  "Uint8Array",
  "Tensor",
  "Kwargs",
]);

/** `name` as an identifier this file may declare: unsafe characters become `_`, reserved words get a `_` suffix. */
export function safeIdentifier(name: string): string {
  const cleaned = IDENTIFIER.test(name) ? name : `_${name.replace(/[^\w$]/g, "_")}`;
  return RESERVED.has(cleaned) ? `${cleaned}_` : cleaned;
}

function propertyName(name: string): string {
  return IDENTIFIER.test(name) ? name : JSON.stringify(name);
}

/** A JSDoc block of `text`: bounded, without anything that could end the comment or a line early. */
function jsdoc(text: string, indent: string, extra: string[] = []): string {
  const clean = (t: string): string =>
    t.replace(/\*\//g, "*\\/").replace(/[\u0000-\u0009\u000b-\u001f\u2028\u2029]/g, " ");
  const doc = text.slice(0, 2000);
  const lines = [...(doc ? doc.split("\n").slice(0, 40) : []), ...extra].map((l) => clean(l).trimEnd());
  if (lines.length === 0) return "";
  if (lines.length === 1) return `${indent}/** ${lines[0]} */\n`;
  return `${indent}/**\n${lines.map((l) => `${indent} *${l ? ` ${l}` : ""}`).join("\n")}\n${indent} */\n`;
}

class Renderer {
  constructor(private readonly names: ReadonlyMap<string, string>) {}

  type(node: TypeNode): string {
    switch (node.k) {
      case "prim":
        return node.n;
      case "literal":
        return typeof node.v === "string" ? JSON.stringify(node.v) : String(node.v);
      case "array": {
        const inner = this.type(node.of);
        return node.of.k === "union" || node.of.k === "fn" ? `Array<${inner}>` : `${inner}[]`;
      }
      case "record":
        return `Record<string, ${this.type(node.of)}>`;
      case "promise":
        return `Promise<${this.type(node.of)}>`;
      case "union":
        return node.of.map((m) => (m.k === "fn" ? `(${this.type(m)})` : this.type(m))).join(" | ") || "never";
      case "tuple":
        return `[${node.items.map((i) => this.type(i)).join(", ")}]`;
      case "fn":
        return `(${node.params.map((p, i) => `arg${i}: ${this.type(p)}`).join(", ")}) => ${this.type(node.ret)}`;
      case "ref":
        return this.names.get(node.n) ?? "unknown";
    }
  }

  params(params: ParamModel[]): string {
    // TypeScript wants no required parameter after an optional one; Python allows none either, but be sure.
    let optionalFrom = params.findIndex((p) => p.optional && !p.rest);
    if (optionalFrom < 0) optionalFrom = params.length;
    return params
      .map((p, i) => {
        const name = safeIdentifier(p.name);
        if (p.rest) return `...${name}: ${this.type({ k: "array", of: p.type })}`;
        return `${name}${i >= optionalFrom ? "?" : ""}: ${this.type(p.type)}`;
      })
      .join(", ");
  }

  method(m: MethodModel): string {
    const keywords = m.keywords.map((k) => `  ${k.name}${k.optional ? "?" : ""}: ${this.type(k.type)}`);
    const extra = keywords.length ? ["Keyword-only (pass `kwargs({ ... })` last):", ...keywords] : [];
    return `${jsdoc(m.doc, "  ", extra)}  ${propertyName(m.name)}(${this.params(m.params)}): ${this.type(m.returns)};\n`;
  }

  named(t: NamedTypeModel): string {
    const name = this.names.get(t.name)!;
    if (t.kind === "tuple") {
      const items = t.items.map((item, i) => `${safeIdentifier(t.labels[i] ?? `item${i}`)}: ${this.type(item)}`);
      return `${jsdoc(t.doc, "")}export type ${name} = [${items.join(", ")}];\n`;
    }
    const bases = t.extends.map((b) => this.names.get(b)).filter((b): b is string => b !== undefined);
    const fields = t.fields
      .map((f) => `  ${propertyName(f.name)}${f.optional ? "?" : ""}: ${this.type(f.type)};\n`)
      .join("");
    return `${jsdoc(t.doc, "")}export interface ${name}${bases.length ? ` extends ${bases.join(", ")}` : ""} {\n${fields}}\n`;
  }
}

/** The .d.ts text for `model`; `source` names the folder it came from, in the header comment. */
export function renderDts(model: ApiModel, source: string): string {
  const names = new Map<string, string>();
  for (const t of model.types) if (!names.has(t.name)) names.set(t.name, safeIdentifier(t.name));
  const r = new Renderer(names);
  const base = safeIdentifier(model.className);
  const callable = model.methods.filter((m) => !isLocalKey(m.name));
  const local = model.methods.filter((m) => isLocalKey(m.name)).map((m) => m.name);
  const usesTensor = (JSON.stringify(model.methods) + JSON.stringify(model.types)).includes(
    '{"k":"prim","n":"Tensor"}',
  );
  const out = [
    `// Generated by \`pyisolate types\` from ${JSON.stringify(source)
      .slice(0, 300)
      .replace(/[\u2028\u2029]/g, " ")} (class ${base}): regenerate, do not edit.`,
    "// The extension's source was parsed, never run; what the generator did not understand is `unknown`.",
    ...(usesTensor ? ['import type { Tensor } from "pyisolate";', ""] : [""]),
    ...model.types.filter((t, i, all) => all.findIndex((o) => o.name === t.name) === i).map((t) => r.named(t)),
    `${jsdoc(model.doc, "", local.length ? [`Reachable only with \`ext.call(name)\` (the proxy keeps these names local): ${local.join(", ")}`] : [])}` +
      `export interface ${base}Api {\n${callable.map((m) => r.method(m)).join("")}}\n`,
    "/** The events the extension emits by a literal name, with their payloads where the source shows them. */\n" +
      `export interface ${base}Events {\n${model.events.map((e) => `  ${propertyName(e.name)}: ${r.type(e.type)};\n`).join("")}}\n`,
  ];
  return out.join("\n");
}
