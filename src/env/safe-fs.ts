// File I/O under folders that install code could have written: never follows a symlink, never reads without a cap.

import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { lstat, mkdir, open, rename, unlink } from "node:fs/promises";
import path from "node:path";

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;

/** Why a path was refused: it is a symlink or not a regular file, or larger than the caller allows. */
export class UnsafeFileError extends Error {
  override readonly name = "UnsafeFileError";
  constructor(
    message: string,
    readonly file: string,
  ) {
    super(message);
  }
}

/**
 * The bytes of `file` when it is a regular file of at most `maxBytes`; O_NOFOLLOW refuses a symlink in its last
 * component (ELOOP), and the size is taken from the open descriptor, so a swap after the check cannot redirect it.
 */
export async function readRegularFile(file: string, maxBytes: number): Promise<Buffer> {
  const fh = await open(file, O_RDONLY | O_NOFOLLOW).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ELOOP") throw new UnsafeFileError(`${file} is a symlink; it is not followed`, file);
    throw err;
  });
  try {
    const info = await fh.stat();
    if (!info.isFile()) throw new UnsafeFileError(`${file} is not a regular file`, file);
    if (info.size > maxBytes)
      throw new UnsafeFileError(`${file} is ${info.size} bytes, over the limit of ${maxBytes}`, file);
    // Read at most one byte past the cap: a file that grows while it is read is refused, not read without end.
    const buffer = Buffer.alloc(info.size + 1);
    let total = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buffer, total, buffer.length - total, total);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > maxBytes)
        throw new UnsafeFileError(`${file} grew over the limit of ${maxBytes} bytes while it was read`, file);
      if (total === buffer.length) break;
    }
    return buffer.subarray(0, total);
  } finally {
    await fh.close();
  }
}

/** Create `file` with `data`; fails (EEXIST) when anything, a symlink included, is already there. */
export async function createExclusive(file: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const fh = await open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
  try {
    await fh.writeFile(data);
  } finally {
    await fh.close();
  }
}

/**
 * Replace `file` with `data` atomically: a fresh temp name created with O_EXCL|O_NOFOLLOW beside it, then rename.
 * rename() replaces whatever is at `file` (a planted symlink included) and never writes through it.
 */
export async function replaceFile(file: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const tmp = path.join(
    path.dirname(file),
    `.${path.basename(file)}.${process.pid}-${randomBytes(6).toString("hex")}.tmp`,
  );
  try {
    await createExclusive(tmp, data, mode);
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

/** Make `dir` (and its parents) and insist that it is a real folder, not a symlink to one. */
export async function ensureRealDir(dir: string, mode = 0o755): Promise<void> {
  await mkdir(dir, { recursive: true, mode });
  const info = await lstat(dir);
  if (!info.isDirectory())
    throw new UnsafeFileError(`${dir} is not a real folder (a symlink or a file is in its place)`, dir);
}

/** Whether `p` is a real folder (lstat: a symlink to a folder is not one). */
export async function isRealDir(p: string): Promise<boolean> {
  return (await lstat(p).catch(() => undefined))?.isDirectory() ?? false;
}
