// Where packages come from, and the flags that say so: a leaf that the installers and the install sandbox share.

/** Where packages come from; null/empty means the backend's own default (and, for pip, its config). */
export interface IndexOptions {
  indexUrl: string | null;
  extraIndexUrls: string[];
  findLinks: string[];
}

/** The index flags, which uv pip and pip spell the same way. */
export function indexArgs(index: IndexOptions): string[] {
  const args: string[] = [];
  if (index.indexUrl) args.push("--index-url", index.indexUrl);
  for (const url of index.extraIndexUrls) args.push("--extra-index-url", url);
  for (const dir of index.findLinks) args.push("--find-links", dir);
  return args;
}
