// `pyisolate types <folder>`: reads an extension's .py files without following links and within caps, has the
// stdlib parser (typegen.py) turn their type hints into a model, checks it, and renders the .d.ts.

import { readdir } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { ConfigError } from "../errors.js";
import { readRegularFile } from "../env/safe-fs.js";
import { RUNTIME_ROOT } from "../runtime-paths.js";
import { runConfined, type ParserConfinement, type ParserLimits } from "./typegen-confine.js";
import { parseApiModel } from "./typegen-model.js";
import { renderDts } from "./typegen-render.js";

/** Bounds on what is read from the extension's folder, which is hostile. */
const LIMITS = { files: 500, fileBytes: 1 << 20, totalBytes: 16 << 20, depth: 8 };
const TOOLS_DIR = join(RUNTIME_ROOT, "pyisolate", "_tools");

export interface TypegenOptions {
  /** The extension class, `"Class"` or `"module:Class"`, where the folder holds more than one. */
  className?: string;
  /** The interpreter that parses (never runs) the source; default `python3`. */
  python?: string;
  timeoutMs?: number;
  /** CPU seconds and address space for the parser (default PARSER_LIMITS). */
  limits?: ParserLimits;
  /** "auto" (default): inside bwrap where it runs; "rlimits": the kernel limits alone. */
  confinement?: "auto" | "rlimits";
}

export interface TypegenResult {
  dts: string;
  className: string;
  warnings: string[];
  /** How the parser was confined. */
  confinement: ParserConfinement;
}

interface SourceFile {
  path: string;
  text: string;
}

/** The package's .py files, as `<folder name>/<relative path>`: no symlink, dot-folder or __pycache__ entered. */
export async function readSources(folder: string): Promise<{ files: SourceFile[]; warnings: string[] }> {
  const files: SourceFile[] = [];
  const warnings: string[] = [];
  let total = 0;
  const walk = async (dir: string, rel: string, depth: number): Promise<void> => {
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const entry of entries) {
      if (entry.name.startsWith(".") || entry.name === "__pycache__" || entry.isSymbolicLink()) continue;
      const path = join(dir, entry.name);
      if (entry.isDirectory() && depth < LIMITS.depth) await walk(path, `${rel}/${entry.name}`, depth + 1);
      if (!entry.isFile() || !entry.name.endsWith(".py")) continue;
      if (files.length >= LIMITS.files) {
        warnings.push(`only the first ${LIMITS.files} .py files were read`);
        return;
      }
      const bytes = await readRegularFile(path, LIMITS.fileBytes).catch(
        (e: Error) => (warnings.push(`${rel}/${entry.name}: skipped, ${e.message}`), undefined),
      );
      if (bytes === undefined) continue;
      total += bytes.length;
      if (total > LIMITS.totalBytes)
        throw new ConfigError(`the extension's .py files exceed ${LIMITS.totalBytes} bytes in all`, { file: folder });
      files.push({ path: `${rel}/${entry.name}`, text: bytes.toString("utf8") });
    }
  };
  await walk(folder, basename(folder), 0);
  return { files, warnings };
}

/** The parser, run confined (typegen-confine.ts): the source goes on stdin, the model comes back on stdout. */
const PARSER_PROGRAM = `import sys; sys.path.insert(0, ${JSON.stringify(TOOLS_DIR)}); import typegen; sys.exit(typegen.main())`;

/** The .d.ts of the extension in `folder`, made from its type hints; its code is parsed, never imported or run. */
export async function generateTypes(folder: string, options: TypegenOptions = {}): Promise<TypegenResult> {
  const root = resolve(folder);
  const { files, warnings } = await readSources(root);
  if (files.length === 0) throw new ConfigError(`no .py file in ${root}`, { file: root });
  const request = JSON.stringify({ files, className: options.className ?? null });
  const parsed = await runConfined({
    python: options.python ?? "python3",
    program: PARSER_PROGRAM,
    readOnly: [TOOLS_DIR],
    stdin: request,
    timeoutMs: options.timeoutMs ?? 60_000,
    limits: options.limits,
    confinement: options.confinement,
  });
  const model = parseApiModel(parsed.stdout);
  if ("error" in model) throw new ConfigError(`cannot type ${root}: ${model.error}`, { key: "className", file: root });
  const all = [...warnings, ...model.warnings];
  return {
    dts: renderDts(model, basename(root)),
    className: model.className,
    warnings: all,
    confinement: parsed.confinement,
  };
}
