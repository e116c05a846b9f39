#!/usr/bin/env node
// Fails when src/ (TypeScript) or python/pyisolate (the guest) has an import cycle, type-only imports included.
// import-x/no-cycle skips `import type`; a cycle of types still ties modules together, so this counts every import.

import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");

function files(dir, ext) {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && ext.some((x) => e.name.endsWith(x)))
    .map((e) => path.join(e.parentPath, e.name));
}

/** Relative imports and re-exports of one TypeScript file, resolved to files (`./x.js` is `./x.ts`). */
function tsImports(file) {
  const text = readFileSync(file, "utf8");
  const out = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+"(\.{1,2}\/[^"]+)"/gms)) {
    out.push(
      path
        .resolve(path.dirname(file), m[1])
        .replace(/\.js$/, ".ts")
        .replace(/\.cjs$/, ".cts"),
    );
  }
  return out;
}

/** Relative imports of one guest module (`from . import x`, `from .x import y`), resolved to files. */
function pyImports(file) {
  const text = readFileSync(file, "utf8");
  const here = path.dirname(file);
  const out = [];
  for (const m of text.matchAll(/^[ \t]*from[ \t]+(\.+)([\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[\w ,\t]+)/gm)) {
    const base = path.resolve(here, ...Array(m[1].length - 1).fill(".."), ...m[2].split(".").filter(Boolean));
    const names = m[2]
      ? [""]
      : m[3]
          .replace(/[()]/g, "")
          .split(",")
          .map((n) => n.trim().split(/\s+/)[0])
          .filter(Boolean);
    for (const name of names) out.push(name ? path.join(base, `${name}.py`) : `${base}.py`);
  }
  return out;
}

/** Strongly connected components of more than one file (Tarjan). */
function cycles(graph) {
  let index = 0;
  const idx = new Map(),
    low = new Map(),
    stack = [],
    on = new Set(),
    found = [];
  const visit = (v) => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const scc = [];
      let w;
      do {
        w = stack.pop();
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) found.push(scc.map((f) => path.relative(root, f)).sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return found;
}

const graph = new Map();
for (const f of files(path.join(root, "src"), [".ts", ".cts"])) graph.set(f, tsImports(f));
for (const f of files(path.join(root, "python", "pyisolate"), [".py"])) graph.set(f, pyImports(f));
const found = cycles(graph);
for (const scc of found) console.error(`import cycle: ${scc.join(" <-> ")}`);
if (found.length) process.exit(1);
console.log(`no import cycles among ${graph.size} modules`);
