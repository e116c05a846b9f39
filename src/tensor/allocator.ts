// Makes segments: memfd first, then an unlinked file in a private folder, then heap copies; imports received fds.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ProtocolError } from "../errors.js";
import { onHostExit } from "../host-exit.js";
import { nativeStatus, type NativeAddon, type NativeStatus } from "./native.js";
import { Segment, type SegmentKind } from "./segment.js";

export const DISABLE_MEMFD_ENV = "PYISOLATE_DISABLE_MEMFD";

/** F_SEAL_SHRINK: a peer holding the fd cannot cut the file under our mapping (which would fault, SIGBUS). */
const F_SEAL_SHRINK = 0x0002;

export interface AllocatorOptions {
  /** The addon status to use (default: this process's). */
  native?: NativeStatus;
  /** Use memfd when the addon has it (default: true unless PYISOLATE_DISABLE_MEMFD is set). */
  memfd?: boolean;
  /** Where the private folder for file segments goes (default: XDG_RUNTIME_DIR, else the OS temp folder). */
  fileRoot?: string;
}

/** How this allocator makes memory, and why, for `pyisolate doctor`. */
export interface AllocatorMode {
  kind: SegmentKind;
  reason: string;
}

function envFlag(value: string | undefined): boolean {
  return value !== undefined && value !== "" && value !== "0";
}

export class SegmentAllocator {
  readonly #native: NativeAddon | undefined;
  readonly #nativeReason: string | undefined;
  #memfd: boolean;
  #memfdReason: string | undefined;
  readonly #fileRoot: string;
  #fileDir: string | undefined;

  constructor(options: AllocatorOptions = {}) {
    const status = options.native ?? nativeStatus;
    this.#native = status.available ? status.addon : undefined;
    this.#nativeReason = status.available ? undefined : status.reason;
    this.#memfd = options.memfd ?? !envFlag(process.env[DISABLE_MEMFD_ENV]);
    this.#memfdReason = this.#memfd ? undefined : `memfd disabled (${DISABLE_MEMFD_ENV} or option)`;
    this.#fileRoot = options.fileRoot ?? process.env.XDG_RUNTIME_DIR ?? tmpdir();
  }

  /** The kind of segment `allocate` makes now and why. */
  get mode(): AllocatorMode {
    if (!this.#native) return { kind: "heap", reason: `copying: native addon unavailable (${this.#nativeReason})` };
    if (this.#memfd) return { kind: "memfd", reason: "anonymous shared memory (memfd), zero-copy" };
    return { kind: "file", reason: `files in a private folder, zero-copy: ${this.#memfdReason}` };
  }

  get native(): NativeAddon | undefined {
    return this.#native;
  }

  /** A zero-filled segment of `size` bytes; `shared: false` asks for heap memory even when sharing works. */
  allocate(size: number, options: { shared?: boolean; name?: string } = {}): Segment {
    if (!Number.isSafeInteger(size) || size < 0)
      throw new RangeError(`segment size must be a non-negative safe integer, got ${size}`);
    const native = this.#native;
    if (options.shared === false || !native) {
      if (options.shared === true) throw new Error(`shared memory unavailable: ${this.#nativeReason}`);
      return Segment.heap(new ArrayBuffer(size));
    }
    const fd = this.#createFd(native, size, options.name ?? "pyisolate-tensor");
    try {
      return new Segment(this.#memfd ? "memfd" : "file", size, native.mmap(fd, size), fd, native);
    } catch (error) {
      native.closeFd(fd);
      throw error;
    }
  }

  #createFd(native: NativeAddon, size: number, name: string): number {
    if (this.#memfd) {
      try {
        return native.memfdCreate(name, size);
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code !== "ENOSYS" && code !== "EPERM" && code !== "EACCES") throw error;
        this.#memfd = false; // a kernel or seccomp policy without memfd: stop trying
        this.#memfdReason = `memfd_create unavailable (${code})`;
      }
    }
    return native.tmpfileCreate(this.#privateDir(), size);
  }

  #privateDir(): string {
    if (this.#fileDir === undefined) {
      this.#fileDir = mkdtempSync(join(this.#fileRoot, "pyisolate-shm-")); // mode 0700
      const dir = this.#fileDir;
      onHostExit(() => rmSync(dir, { recursive: true, force: true }));
    }
    return this.#fileDir;
  }

  /**
   * Adopts a descriptor received from a peer that says it holds `size` bytes; the fd is owned (and closed) by the
   * returned segment, or closed here on failure. Only a memfd sealed against shrinking is accepted, and mapped
   * (zero-copy, nothing read until used). Anything else is a ProtocolError: its owner could shrink it under a
   * mapping (SIGBUS in the host), and reading it instead would let a sparse file of any size fill the host heap.
   */
  importFd(fd: number, size: number): Segment {
    const native = this.#native;
    if (!native) throw new Error(`cannot import a shared segment: ${this.#nativeReason}`);
    try {
      if (!Number.isSafeInteger(size) || size < 0)
        throw new ProtocolError(`segment size ${size} is not a non-negative integer`);
      let actual: number;
      try {
        actual = native.fstatSize(fd);
      } catch (error) {
        throw new ProtocolError(`received segment fd is unusable: ${(error as Error).message}`, { cause: error });
      }
      if (actual < size)
        throw new ProtocolError(`received segment holds ${actual} bytes, less than the ${size} declared`);
      const seals = native.getSeals(fd);
      if (seals === null || (seals & F_SEAL_SHRINK) === 0) {
        const found = seals === null ? "a file that cannot carry seals" : `seals 0x${seals.toString(16)}`;
        throw new ProtocolError(
          `received segment fd is not a memfd sealed against shrinking (${found}): only sealed memfds are accepted`,
        );
      }
      return new Segment("memfd", size, undefined, fd, native); // mapped on first use
    } catch (error) {
      try {
        native.closeFd(fd);
      } catch {
        // already closed above
      }
      throw error;
    }
  }
}

/** The allocator of this process, configured from the environment. */
export const defaultAllocator = new SegmentAllocator();
