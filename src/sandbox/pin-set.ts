// The paths one load or install holds open, from the guard's check until the sandbox has them: each pinned once,
// handed to the child as inherited descriptors (FIRST_PINNED_FD, FIRST_PINNED_FD + 1, ...), closed by the owner.

import { closeSync, realpathSync } from "node:fs";
import { ConfigError } from "../errors.js";
import { ensureDirPinned, FIRST_PINNED_FD, pinPath, type PinnedPath } from "./pin.js";

/** Pinned paths as one launch hands them on: child descriptor per path inside, and the host descriptors in order. */
export interface ChildPins {
  /** Path as bound or ruled (inside the sandbox: the same path) -> the descriptor number the child gets. */
  childFd: Record<string, number>;
  /** Host descriptors, in child order: the first becomes FIRST_PINNED_FD. */
  hostFds: number[];
}

export class PathPins {
  private readonly byPath = new Map<string, PinnedPath>();
  /** Spellings (a venv's link to its Python) -> the real path pinned for them. */
  private readonly spelling = new Map<string, string>();
  private closed = false;

  /** Pin `real` (absolute, symlink-free, already checked); the same path twice is one descriptor. */
  pin(real: string, key: string): PinnedPath {
    return this.remember(real, () => {
      try {
        return pinPath(real, key);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT")
          throw new ConfigError(`${key}: "${real}" does not exist`, { key });
        throw error;
      }
    });
  }

  /** Like `pin`, but a path that does not exist (yet) is left unpinned: a writable folder is made later by `ensureDir`. */
  pinIfExists(real: string, key: string): PinnedPath | undefined {
    try {
      return this.remember(real, () => pinPath(real, key));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
  }

  /** Pin the folder `real`, creating it (and missing parents) inside pinned parents when absent. */
  ensureDir(real: string, key: string): PinnedPath {
    return this.remember(real, () => ensureDirPinned(real, key));
  }

  /**
   * Pin what `spelling` leads to now and let it be bound at `spelling` (host-derived paths only, such as the Python
   * install a venv's links go through). The real path is resolved and opened here once.
   */
  pinSpelling(spelling: string, key: string): PinnedPath {
    let real: string;
    try {
      real = realpathSync(spelling);
    } catch (error) {
      throw new ConfigError(
        `${key}: cannot resolve "${spelling}" (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
        { key, cause: error },
      );
    }
    const pinned = this.pin(real, key);
    if (spelling !== real) this.spelling.set(spelling, real);
    return pinned;
  }

  /** Like `pinSpelling`, but a path that does not exist is left out (undefined), as bwrap's --ro-bind-try would. */
  pinSpellingIfExists(spelling: string, key: string): PinnedPath | undefined {
    try {
      realpathSync(spelling);
    } catch {
      return undefined;
    }
    return this.pinSpelling(spelling, key);
  }

  get(p: string): PinnedPath | undefined {
    return this.byPath.get(this.spelling.get(p) ?? p);
  }

  /**
   * Descriptor numbers for one child: `paths` in order, each pinned already. Two names of one object (a Python install
   * and its spelling) get two child descriptors (spawn duplicates the host one into both): bwrap closes each
   * descriptor after its mount, so one could not serve two binds.
   */
  forChild(paths: readonly string[]): ChildPins {
    const childFd: Record<string, number> = {};
    const hostFds: number[] = [];
    for (const p of paths) {
      if (childFd[p] !== undefined) continue;
      const pinned = this.get(p);
      if (!pinned) throw new Error(`PathPins: "${p}" reaches the sandbox without having been pinned`);
      childFd[p] = FIRST_PINNED_FD + hostFds.push(pinned.fd) - 1;
    }
    return { childFd, hostFds };
  }

  /** Close every descriptor (after the child was spawned: it holds its own copies). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const pinned of this.byPath.values()) closeSync(pinned.fd);
    this.byPath.clear();
  }

  private remember(real: string, open: () => PinnedPath): PinnedPath {
    if (this.closed) throw new Error("PathPins: already closed");
    const known = this.byPath.get(real);
    if (known) return known;
    const pinned = open();
    this.byPath.set(real, pinned);
    return pinned;
  }
}
