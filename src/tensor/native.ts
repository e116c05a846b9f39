// Loads the native tensor addon (native/build/Release/pyisolate_native.node) once; without it, tensors copy.

import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

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
  /** An anonymous memfd of `size` bytes, close-on-exec, sealed against shrink and grow (and further seals). */
  memfdCreate(name: string, size: number): number;
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
  | { available: true; addon: NativeAddon; path: string }
  | { available: false; reason: string; path: string };

const ADDON_FILE = "pyisolate_native.node";

/** native/build/Release/ of the package: the same two levels up from src/tensor/ (tsx) and dist/tensor/. */
export function defaultAddonPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return join(here, "..", "..", "native", "build", "Release", ADDON_FILE);
}

/** Loads the addon at `path` unless `env` disables it; never throws. */
export function loadNative(env: NodeJS.ProcessEnv = process.env, path = defaultAddonPath()): NativeStatus {
  const flag = env[DISABLE_NATIVE_ENV];
  if (flag !== undefined && flag !== "" && flag !== "0") {
    return { available: false, reason: `disabled by ${DISABLE_NATIVE_ENV}=${flag}`, path };
  }
  if (process.platform === "win32") return { available: false, reason: "not supported on Windows", path };
  if (!existsSync(path)) {
    return { available: false, reason: `the addon was not built (${path} is missing; run npm rebuild pyisolate)`, path };
  }
  try {
    const addon = createRequire(import.meta.url)(path) as NativeAddon;
    if (addon.abiVersion !== NATIVE_ABI_VERSION) {
      return { available: false, reason: `stale build: addon ABI ${addon.abiVersion}, expected ${NATIVE_ABI_VERSION}`, path };
    }
    return { available: true, addon, path };
  } catch (error) {
    return { available: false, reason: `the addon failed to load: ${(error as Error).message}`, path };
  }
}

/** The addon of this process, loaded once at import. */
export const nativeStatus: NativeStatus = loadNative();
export const nativeAvailable: boolean = nativeStatus.available;
/** Why the addon is not in use, or undefined when it is. */
export const nativeUnavailableReason: string | undefined = nativeStatus.available ? undefined : nativeStatus.reason;
