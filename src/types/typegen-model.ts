// The type generator's model (what typegen.py prints) and its check: the model is made from hostile source text,
// so every name, string and node is checked here before any of it is written into a .d.ts.

import { ProtocolError } from "../errors.js";

export type TypeNode =
  | { k: "prim"; n: "number" | "string" | "boolean" | "null" | "unknown" | "void" | "Uint8Array" | "Tensor" | "bigint" }
  | { k: "array" | "record" | "promise"; of: TypeNode }
  | { k: "union"; of: TypeNode[] }
  | { k: "tuple"; items: TypeNode[] }
  | { k: "literal"; v: string | number | boolean }
  | { k: "fn"; params: TypeNode[]; ret: TypeNode }
  | { k: "ref"; n: string };

export interface ParamModel {
  name: string;
  type: TypeNode;
  optional: boolean;
  rest?: boolean;
}
export interface MethodModel {
  name: string;
  doc: string;
  params: ParamModel[];
  keywords: ParamModel[];
  returns: TypeNode;
}
export interface FieldModel {
  name: string;
  type: TypeNode;
  optional: boolean;
}
export type NamedTypeModel =
  | { kind: "interface"; name: string; doc: string; fields: FieldModel[]; extends: string[] }
  | { kind: "tuple"; name: string; doc: string; items: TypeNode[]; labels: string[] };

export interface ApiModel {
  className: string;
  module: string;
  doc: string;
  methods: MethodModel[];
  types: NamedTypeModel[];
  /** Each event emitted by a literal name, with what its payloads are known to be. */
  events: { name: string; type: TypeNode }[];
  warnings: string[];
}

const PRIMS = new Set(["number", "string", "boolean", "null", "unknown", "void", "Uint8Array", "Tensor", "bigint"]);
const MAX_DEPTH = 32;
const MAX_ITEMS = 1000;

function fail(what: string): never {
  throw new ProtocolError(`the type generator's output is malformed: ${what}`);
}

function str(value: unknown, what: string, max = 100_000): string {
  if (typeof value !== "string" || value.length > max) fail(`${what} is not a string of at most ${max} characters`);
  return value;
}

function list<T>(value: unknown, what: string, each: (item: unknown, i: number) => T): T[] {
  if (!Array.isArray(value) || value.length > MAX_ITEMS) fail(`${what} is not a list of at most ${MAX_ITEMS}`);
  return value.map(each);
}

function obj(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) fail(`${what} is not an object`);
  return value as Record<string, unknown>;
}

export function checkType(value: unknown, depth = 0): TypeNode {
  if (depth > MAX_DEPTH) return { k: "prim", n: "unknown" };
  const node = obj(value, "a type");
  const sub = (v: unknown): TypeNode => checkType(v, depth + 1);
  switch (node.k) {
    case "prim":
      if (!PRIMS.has(node.n as string)) fail(`unknown primitive ${JSON.stringify(node.n)?.slice(0, 40)}`);
      return { k: "prim", n: node.n as "number" };
    case "array":
    case "record":
    case "promise":
      return { k: node.k, of: sub(node.of) };
    case "union":
      return { k: "union", of: list(node.of, "a union", sub) };
    case "tuple":
      return { k: "tuple", items: list(node.items, "a tuple", sub) };
    case "fn":
      return { k: "fn", params: list(node.params, "a callable's parameters", sub), ret: sub(node.ret) };
    case "ref":
      return { k: "ref", n: str(node.n, "a type name", 200) };
    case "literal": {
      const v = node.v;
      if (typeof v === "string" && v.length <= 1000) return { k: "literal", v };
      if (typeof v === "boolean" || (typeof v === "number" && Number.isFinite(v))) return { k: "literal", v };
      return fail("a literal that is not a string, a finite number or a boolean");
    }
    default:
      return fail(`a type of kind ${JSON.stringify(node.k)?.slice(0, 40)}`);
  }
}

function checkParam(value: unknown): ParamModel {
  const p = obj(value, "a parameter");
  return {
    name: str(p.name, "a parameter name", 200),
    type: checkType(p.type),
    optional: p.optional === true,
    rest: p.rest === true,
  };
}

function checkNamedType(value: unknown): NamedTypeModel {
  const t = obj(value, "a named type");
  const base = { name: str(t.name, "a type name", 200), doc: str(t.doc ?? "", "a docstring") };
  if (t.kind === "tuple") {
    return {
      kind: "tuple",
      ...base,
      items: list(t.items, "tuple items", (i) => checkType(i)),
      labels: list(t.labels, "tuple labels", (l) => str(l, "a label", 200)),
    };
  }
  if (t.kind !== "interface") fail(`a named type of kind ${JSON.stringify(t.kind)?.slice(0, 40)}`);
  const fields = list(t.fields, "fields", (f) => {
    const field = obj(f, "a field");
    return {
      name: str(field.name, "a field name", 200),
      type: checkType(field.type),
      optional: field.optional === true,
    };
  });
  return { kind: "interface", ...base, fields, extends: list(t.extends, "bases", (b) => str(b, "a base name", 200)) };
}

/** The model in `json` (typegen.py's stdout), checked; a ProtocolError when anything is off. */
export function parseApiModel(json: string): ApiModel | { error: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    fail("not JSON");
  }
  const model = obj(raw, "the model");
  if (typeof model.error === "string") return { error: model.error.slice(0, 2000) };
  return {
    className: str(model.className, "the class name", 200),
    module: str(model.module, "the module path", 4096),
    doc: str(model.doc ?? "", "the class docstring"),
    methods: list(model.methods, "methods", (m) => {
      const method = obj(m, "a method");
      return {
        name: str(method.name, "a method name", 200),
        doc: str(method.doc ?? "", "a docstring"),
        params: list(method.params, "parameters", checkParam),
        keywords: list(method.keywords, "keywords", checkParam),
        returns: checkType(method.returns),
      };
    }),
    types: list(model.types, "types", checkNamedType),
    events: list(model.events, "events", (e) => {
      const event = obj(e, "an event");
      return { name: str(event.name, "an event name", 200), type: checkType(event.type) };
    }),
    warnings: list(model.warnings, "warnings", (w) => str(w, "a warning", 2000)),
  };
}
