// Opens each host path a sandbox gets once, as a descriptor on the object itself, so that bwrap binds and Landlock
// rules what was checked: a symlink swapped in after the check cannot redirect them (time-of-check/time-of-use).

import { closeSync, constants, fstatSync, mkdirSync, openSync, readlinkSync } from "node:fs";
import path from "node:path";
import { ConfigError } from "../errors.js";

/** Linux's O_PATH (the same value on x86_64, aarch64, ppc64 and riscv64): a handle that grants no read or write. */
const O_PATH = 0o10000000;
/** The final component is never followed: a symlink there is opened as itself, and refused below. Node adds O_CLOEXEC. */
const PIN_FLAGS = O_PATH | constants.O_NOFOLLOW;
/**
 * The first descriptor number pinned paths get in a child: 0-2 are stdio, 3 the RPC socket, 4 the tensor channel,
 * 5 the health heartbeat (lifecycle/health.ts).
 */
export const FIRST_PINNED_FD = 6;

/** One host path held open: the descriptor, and the object's identity when it was opened. */
export interface PinnedPath {
  /** The absolute, symlink-free path that was checked; the descriptor was verified to be that object. */
  path: string;
  fd: number;
  dev: number;
  ino: number;
  directory: boolean;
}

function errnoOf(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * Open `real` (absolute, symlinks already resolved by the guard) without following a final symlink, and prove the
 * opened object is the one at that path: /proc/self/fd says where the descriptor really points, so a component swapped
 * for a symlink between the check and this open is caught here. Throws a ConfigError naming `key`; ENOENT is rethrown
 * as is, for `ensureDirPinned` to create the path.
 */
export function pinPath(real: string, key: string, at: string = real): PinnedPath {
  if (!path.isAbsolute(real)) throw new ConfigError(`${key}: "${real}" is not absolute`, { key });
  let fd: number;
  try {
    fd = openSync(at, PIN_FLAGS);
  } catch (error) {
    if (errnoOf(error) === "ENOENT") throw error;
    throw new ConfigError(`${key}: cannot open "${real}" (${errnoOf(error) ?? String(error)})`, { key, cause: error });
  }
  try {
    const st = fstatSync(fd);
    if (st.isSymbolicLink())
      throw new ConfigError(`${key}: "${real}" is a symlink now; it was a real path when it was checked`, { key });
    const seen = readlinkSync(`/proc/self/fd/${fd}`);
    if (seen !== real)
      throw new ConfigError(`${key}: "${real}" changed after it was checked: it now leads to ${seen}`, { key });
    return { path: real, fd, dev: st.dev, ino: st.ino, directory: st.isDirectory() };
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

/**
 * Pin the folder `real`, creating what is missing of it one component at a time inside the pinned parent
 * (through /proc/self/fd/N, which is the parent object itself): nothing is created through a swapped-in symlink.
 */
export function ensureDirPinned(real: string, key: string): PinnedPath {
  try {
    return pinPath(real, key);
  } catch (error) {
    if (errnoOf(error) !== "ENOENT") throw error;
  }
  const parentPath = path.dirname(real);
  if (parentPath === real) throw new ConfigError(`${key}: "${real}" does not exist`, { key });
  const parent = ensureDirPinned(parentPath, key);
  try {
    const inParent = `/proc/self/fd/${parent.fd}/${path.basename(real)}`;
    try {
      mkdirSync(inParent);
    } catch (error) {
      if (errnoOf(error) !== "EEXIST")
        throw new ConfigError(`${key}: cannot create "${real}" (${errnoOf(error) ?? String(error)})`, {
          key,
          cause: error,
        });
    }
    const pinned = pinPath(real, key, inParent);
    if (!pinned.directory) {
      closeSync(pinned.fd);
      throw new ConfigError(`${key}: "${real}" is not a folder`, { key });
    }
    return pinned;
  } finally {
    closeSync(parent.fd);
  }
}
