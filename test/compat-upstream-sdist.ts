// Python pyisolate 0.10.2's sdist, fetched from PyPI at test time (never copied into this repository), cached
// under $TMPDIR, checked against its pinned sha256 and unpacked: its test extensions and fixtures.

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

export const UPSTREAM_VERSION = "0.10.2";
const FILE = `pyisolate-${UPSTREAM_VERSION}.tar.gz`;
/** PyPI's sha256 of the sdist: files on PyPI never change, so a different download is refused. */
const SHA256 = "c5803c0350ed773d1bcfed9cfb414b7b04a932c141e4a851d633d98a349f3b48";
const SIMPLE_INDEX = "https://pypi.org/simple/pyisolate/";
const FETCH_TIMEOUT_MS = 60_000;

export interface UpstreamTree {
  /** The unpacked `pyisolate-0.10.2/` folder (a fresh copy per call: tests may write beside it). */
  root: string;
  testPackage: string;
  fixture(name: "uv_sealed_worker" | "conda_sealed_node"): string;
}

export type Fetched = { tree: UpstreamTree } | { unreachable: string };

/** The cached sdist, or a fresh download of it; `unreachable` says why when the registry cannot be reached. */
async function sdistBytes(cacheDir: string): Promise<Buffer | { unreachable: string }> {
  const cached = path.join(cacheDir, FILE);
  if (existsSync(cached)) {
    const bytes = readFileSync(cached);
    if (sha256(bytes) === SHA256) return bytes;
  }
  let url: string;
  let bytes: Buffer;
  try {
    // PEP 691: the simple index as JSON names the file's URL (on files.pythonhosted.org); nothing is built or run.
    const index = await fetch(SIMPLE_INDEX, {
      headers: { Accept: "application/vnd.pypi.simple.v1+json" },
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    });
    if (index.status === 404) throw new Error(`PyPI's simple index has no pyisolate (HTTP 404 for ${SIMPLE_INDEX})`);
    if (!index.ok) return { unreachable: `PyPI's simple index answered HTTP ${index.status} for pyisolate` };
    const files = ((await index.json()) as { files: { filename: string; url: string }[] }).files;
    const entry = files.find((f) => f.filename === FILE);
    if (!entry) throw new Error(`PyPI lists no ${FILE}`);
    url = entry.url;
    const download = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    if (!download.ok) return { unreachable: `${url} answered HTTP ${download.status}` };
    bytes = Buffer.from(await download.arrayBuffer());
  } catch (error) {
    const cause = (error as Error & { cause?: Error }).cause;
    if (error instanceof TypeError || (error as Error).name === "TimeoutError") {
      return { unreachable: `PyPI cannot be reached from here (${cause?.message ?? (error as Error).message})` };
    }
    throw error;
  }
  if (sha256(bytes) !== SHA256) throw new Error(`${url} is not the ${FILE} PyPI published (sha256 ${sha256(bytes)})`);
  mkdirSync(cacheDir, { recursive: true });
  const partial = `${cached}.${process.pid}.part`;
  writeFileSync(partial, bytes);
  renameSync(partial, cached); // whole or absent, even with two test files fetching at once
  return bytes;
}

function sha256(bytes: Buffer): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Fetches (or reuses) the sdist and unpacks its test extensions and fixtures into a fresh folder under `into`. */
export async function fetchUpstream(into: string): Promise<Fetched> {
  const cacheDir = path.join(tmpdir(), "pyisolate-upstream-sdist");
  const bytes = await sdistBytes(cacheDir);
  if (!Buffer.isBuffer(bytes)) return bytes;
  const dir = mkdtempSync(path.join(into, "upstream-"));
  const archive = path.join(dir, FILE);
  writeFileSync(archive, bytes);
  const top = `pyisolate-${UPSTREAM_VERSION}`;
  // Only the two folders the tests load; --no-same-owner so that a root run leaves files the user may delete.
  execFileSync("tar", [
    "-xzf",
    archive,
    "-C",
    dir,
    "--no-same-owner",
    `${top}/tests/harness/test_package`,
    `${top}/tests/fixtures`,
  ]);
  const root = path.join(dir, top);
  return {
    tree: {
      root,
      testPackage: path.join(root, "tests", "harness", "test_package"),
      fixture: (name) => path.join(root, "tests", "fixtures", name),
    },
  };
}
