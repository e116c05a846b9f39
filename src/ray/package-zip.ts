// The zip Ray unpacks as a job's working_dir: folders read without following a symlink (each directory opened by
// descriptor, each entry looked up through it), bounded in size, written as a plain deflate zip.

import { createHash } from "node:crypto";
import { constants } from "node:fs";
import { open, readdir } from "node:fs/promises";
import { deflateRawSync } from "node:zlib";
import { RayClusterError } from "../errors.js";

const { O_RDONLY, O_NOFOLLOW, O_DIRECTORY } = constants;

/** One folder to pack and where its content goes in the zip ("" is the top). */
export interface PackageSource {
  dir: string;
  prefix: string;
}

export interface PackageOptions {
  /** Refused past this many bytes of file content (Ray keeps packages in its GCS; default 64 MiB). */
  maxBytes?: number;
  /** Names skipped wherever they appear (default: __pycache__, .git). */
  skip?: readonly string[];
}

const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
const DEFAULT_SKIP = ["__pycache__", ".git"];

interface Entry {
  name: string;
  data: Buffer;
}

/**
 * Reads each source folder by descriptor: a symlink anywhere (a file, a folder, the folder itself) is left out, never
 * followed, so an extension's folder cannot pull a host file into the package by a link or a swap during the walk.
 */
export async function collectFiles(sources: readonly PackageSource[], options: PackageOptions = {}): Promise<Entry[]> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const skip = new Set(options.skip ?? DEFAULT_SKIP);
  const entries: Entry[] = [];
  let total = 0;
  const walk = async (dirPath: string, prefix: string): Promise<void> => {
    const dir = await open(dirPath, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    try {
      // Through the descriptor: what a later rename or link does to dirPath changes nothing we read.
      const base = `/proc/self/fd/${dir.fd}`;
      const names = (await readdir(base, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
      for (const item of names) {
        if (skip.has(item.name)) continue;
        const inZip = prefix ? `${prefix}/${item.name}` : item.name;
        if (item.isDirectory()) await walk(`${base}/${item.name}`, inZip);
        else if (item.isFile()) {
          const data = await readNoFollow(`${base}/${item.name}`, maxBytes - total);
          if (data === undefined) continue; // swapped for something else meanwhile: left out
          total += data.length;
          entries.push({ name: inZip, data });
        }
      }
    } finally {
      await dir.close();
    }
  };
  for (const source of sources) await walk(source.dir, source.prefix);
  return entries;
}

async function readNoFollow(file: string, budget: number): Promise<Buffer | undefined> {
  const fh = await open(file, O_RDONLY | O_NOFOLLOW).catch(() => undefined);
  if (!fh) return undefined;
  try {
    const info = await fh.stat();
    if (!info.isFile()) return undefined;
    if (info.size > budget)
      throw new RayClusterError(
        `the package for the Ray cluster is over its size limit at ${file.replace(/^\/proc\/self\/fd\/\d+\//, "")}`,
      );
    const data = await fh.readFile();
    if (data.length > budget)
      throw new RayClusterError("the package for the Ray cluster grew over its size limit while it was read");
    return data;
  } finally {
    await fh.close();
  }
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(data: Buffer): number {
  let c = 0xffffffff;
  for (const byte of data) c = CRC_TABLE[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Pure: a zip (deflate, fixed timestamps, so that the same files make the same bytes and the same URI). */
export function writeZip(entries: readonly Entry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = Buffer.from(entry.name, "utf8");
    const packed = deflateRawSync(entry.data);
    const crc = crc32(entry.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(8, 8); // deflate
    local.writeUInt32LE(0x00210000, 10); // 1980-01-01 00:00
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(packed.length, 18);
    local.writeUInt32LE(entry.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    locals.push(local, name, packed);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(0x0314, 4); // made by: Unix, 2.0
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(8, 10);
    central.writeUInt32LE(0x00210000, 12);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(packed.length, 20);
    central.writeUInt32LE(entry.data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE((0o100644 << 16) >>> 0, 38); // a regular file, rw-r--r--
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);
    offset += 30 + name.length + packed.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

/** The folders packed into one zip and the URI Ray knows it by: its content's hash, so an unchanged package is uploaded once. */
export async function buildPackage(
  sources: readonly PackageSource[],
  options?: PackageOptions,
): Promise<{ uri: string; zip: Buffer }> {
  const zip = writeZip(await collectFiles(sources, options));
  const hash = createHash("sha256").update(zip).digest("hex").slice(0, 32);
  return { uri: `gcs://_ray_pkg_${hash}.zip`, zip };
}
