// How deep a YAML text nests, measured on the yaml package's token tree without recursion (before any is parsed).

import { Parser } from "yaml";

/**
 * The deepest nesting of collections in `text` (a scalar at the top is 0, `a: 1` is 1). The yaml package's
 * composer recurses once per level: a 60 KB file of `[[[[...` overflows the stack inside it, and where that
 * overflow lands in V8's regexp compiler the whole host process aborts. The tokenizer and this walk use explicit
 * stacks, so measuring first is safe at any depth. Stops counting at `stopAt`.
 */
export function yamlNestingDepth(text: string, stopAt = Number.POSITIVE_INFINITY): number {
  let deepest = 0;
  const nodes: unknown[] = [];
  const depths: number[] = [];
  for (const token of new Parser().parse(text)) {
    nodes.push(token);
    depths.push(0);
  }
  while (nodes.length > 0) {
    const node = nodes.pop();
    const depth = depths.pop()!;
    if (typeof node !== "object" || node === null) continue;
    if (depth > deepest) deepest = depth;
    if (deepest > stopAt) return deepest;
    const { value, items } = node as { value?: unknown; items?: unknown };
    if (value !== undefined) {
      nodes.push(value);
      depths.push(depth);
    }
    if (!Array.isArray(items)) continue;
    for (const item of items as { key?: unknown; value?: unknown }[]) {
      for (const child of [item.key, item.value]) {
        if (child === undefined || child === null) continue;
        nodes.push(child);
        depths.push(depth + 1);
      }
    }
  }
  return deepest;
}
