// Loads the native tensor addon once (the prebuilt binary, else a local build); without it, tensors copy.

import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { addonCandidates, detectLibc } from "./native-paths.js";

/** One message read by recvFds. */
export interface ReceivedFds {
  /** The bytes that came with the fds (length 0: the peer closed the socket). */
  bytes: Buffer;
  /** Received descriptors, close-on-exec; the caller owns (and must close) them. */
  fds: number[];
  /** The kernel dropped fds beyond `maxFds` (and closed them) or, on a seqpacket socket, bytes beyond `maxBytes`. */
  truncated: boolean;
}

/**
 * The addon's calls. Every failing syscall throws an Error whose message names the call and the errno
 * ("mmap failed: ENOMEM (Cannot allocate memory)"), with `code` (the errno name), `errno` and `syscall`.
 */
export interface NativeAddon {
  /**
   * An anonymous memfd of `size` bytes, close-on-exec, sealed against shrink and grow, and against further seals
   * unless `sealLater` (then add them with addSeals).
   */
  memfdCreate(name: string, size: number, sealLater?: boolean): number;
  /** fcntl(F_ADD_SEALS); throws EPERM where the file forbids it. Missing from addons built before it. */
  addSeals?(fd: number, seals: number): void;
  /** The fallback: an unnamed file of `size` bytes (blocks reserved) in `dir`, which must be private (0700). */
  tmpfileCreate(dir: string, size: number): number;
  /** F_GET_SEALS bits, or null when the file cannot carry seals. */
  getSeals(fd: number): number | null;
  /** The size of a regular file; throws EINVAL for anything else (a socket, a pipe, a device). */
  fstatSize(fd: number): number;
  closeFd(fd: number): void;
  /** A new close-on-exec descriptor of the same open file. */
  dupFd(fd: number): number;
  /** A read/write MAP_SHARED mapping as an ArrayBuffer; unmapped by its finalizer or by munmap(). */
  mmap(fd: number, size: number, offset?: number): ArrayBuffer;
  /** Detaches a buffer made by mmap() (its views become empty) and releases its pages; false for other buffers. */
  munmap(buffer: ArrayBuffer): boolean;
  /** A private (copy-on-write) mapping of a memfd sealed against write, shrink and grow; EPERM for any other fd. */
  mapSealed?(fd: number, size: number, populate: boolean): ArrayBuffer;
  /** A copy of a file's first `size` bytes, read with pread (ENODATA when the file ends first), in memory kept from
   * collected copies or fresh (huge pages from 2 MiB on); its finalizer keeps it for the next copy or unmaps it.
   * Missing from addons built before it. */
  copyOut?(fd: number, size: number): ArrayBuffer;
  /** Unmaps the memory copyOut kept from collected copies at least `maxAgeMs` old; returns the bytes still kept. */
  trimCopies?(maxAgeMs: number): number;
  /** A connected AF_UNIX pair, both close-on-exec: [hostFd (non-blocking), childFd (blocking)]. */
  socketPair(kind?: "seqpacket" | "stream"): [number, number];
  /** sendmsg with SCM_RIGHTS; bytes sent, or null when the socket would block (EAGAIN). */
  sendFds(socketFd: number, bytes: Uint8Array, fds: readonly number[]): number | null;
  /** recvmsg with SCM_RIGHTS; null when nothing is waiting (EAGAIN). */
  recvFds(socketFd: number, maxFds: number, maxBytes?: number): ReceivedFds | null;
  /** The system page size: mmap offsets are multiples of it. */
  readonly pageSize: number;
  /** Bumped when the calls above change incompatibly. */
  readonly abiVersion: number;
}

export const NATIVE_ABI_VERSION = 2;
export const DISABLE_NATIVE_ENV = "PYISOLATE_DISABLE_NATIVE";

/** Whether the addon loaded; when not, `reason` says why (for `pyisolate doctor` and error messages). */
export type NativeStatus =
  { available: true; addon: NativeAddon; path: string } | { available: false; reason: string; path: string };

/** The package root: the same two levels up from src/tensor/ (tsx) and dist/tensor/. */
function packageRoot(): string {
  return join(dirname(fileURLToPath(import.meta.url)), "..", "..");
}

/** The paths tried, in order: the prebuilt binary for this platform, then native/build/Release/ (npm rebuild). */
export function defaultAddonPaths(): string[] {
  return addonCandidates(
    packageRoot(),
    process.platform,
    process.arch,
    process.platform === "linux" ? detectLibc() : "glibc",
  );
}

/** Loads the first of `paths` that loads with the expected ABI, unless `env` disables the addon; never throws. */
export function loadNative(
  env: NodeJS.ProcessEnv = process.env,
  paths: string | readonly string[] = defaultAddonPaths(),
): NativeStatus {
  const candidates = typeof paths === "string" ? [paths] : paths;
  const first = candidates[0] ?? "";
  const flag = env[DISABLE_NATIVE_ENV];
  if (flag !== undefined && flag !== "" && flag !== "0") {
    return { available: false, reason: `disabled by ${DISABLE_NATIVE_ENV}=${flag}`, path: first };
  }
  if (process.platform === "win32") return { available: false, reason: "not supported on Windows", path: first };
  const present = candidates.filter((path) => existsSync(path));
  if (present.length === 0) {
    return {
      available: false,
      reason: `the addon was not built (no prebuilt binary for ${process.platform}-${process.arch}, and ${candidates.at(-1)} is missing; run npm rebuild pyisolate)`,
      path: first,
    };
  }
  const failures: string[] = [];
  for (const path of present) {
    const loaded = loadOne(path);
    if (loaded.available) return loaded;
    failures.push(loaded.reason);
  }
  return { available: false, reason: failures.join("; "), path: present[0]! };
}

function loadOne(path: string): NativeStatus {
  try {
    const addon = createRequire(import.meta.url)(path) as NativeAddon;
    if (addon.abiVersion !== NATIVE_ABI_VERSION) {
      return {
        available: false,
        reason: `stale build: addon ABI ${addon.abiVersion}, expected ${NATIVE_ABI_VERSION} (${path})`,
        path,
      };
    }
    return { available: true, addon, path };
  } catch (error) {
    return { available: false, reason: `the addon failed to load: ${firstLine((error as Error).message)}`, path };
  }
}

function firstLine(text: string): string {
  return text.split("\n", 1)[0]!.slice(0, 300);
}

/** The addon of this process, loaded once at import. */
export const nativeStatus: NativeStatus = loadNative();
export const nativeAvailable: boolean = nativeStatus.available;
/** Why the addon is not in use, or undefined when it is. */
export const nativeUnavailableReason: string | undefined = nativeStatus.available ? undefined : nativeStatus.reason;

/** The `code` of the warning emitted when tensors fall back to copying because the addon is missing. */
export const COPY_FALLBACK_WARNING = "PYISOLATE_TENSOR_COPY";

/**
 * Emit, once per process, Node's warning that tensors will be copied because the addon did not load (not when it was
 * disabled on purpose). Once per process by nature, as Node's own deprecation warnings are: every extension would
 * repeat the same line. Returns whether this call emitted it.
 */
export const warnCopyFallback = ((): ((status: NativeStatus) => boolean) => {
  let emitted = false;
  return (status) => {
    if (emitted || status.available || status.reason.startsWith("disabled by")) return false;
    emitted = true;
    process.emitWarning(`pyisolate: tensors are copied, not shared: ${status.reason}`, {
      code: COPY_FALLBACK_WARNING,
      detail: "pyisolate doctor tells what is missing; npm rebuild pyisolate builds the addon (it needs a C compiler).",
    });
    return true;
  };
})();
