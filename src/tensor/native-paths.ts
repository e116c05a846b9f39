// Where the tensor addon may be: the prebuilt binary shipped for this platform first, then a local node-gyp build.

import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

export const ADDON_FILE = "pyisolate_native.node";

/** The C library a Linux binary is linked against; musl binaries do not load on glibc and back. */
export type Libc = "glibc" | "musl";

/** Pure: the prebuilt's path inside the package, e.g. prebuilds/linux-x64/pyisolate_native.glibc.node. */
export function prebuiltPath(packageRoot: string, platform: string, arch: string, libc: Libc): string {
  return join(packageRoot, "prebuilds", `${platform}-${arch}`, `pyisolate_native.${libc}.node`);
}

/** Pure: native/build/Release/ of the package, where `node-gyp rebuild --directory native` puts the addon. */
export function localBuildPath(packageRoot: string): string {
  return join(packageRoot, "native", "build", "Release", ADDON_FILE);
}

/** Pure: the candidates in the order they are tried (prebuilt first: it needs no compiler and matches the ABI). */
export function addonCandidates(packageRoot: string, platform: string, arch: string, libc: Libc): string[] {
  return [prebuiltPath(packageRoot, platform, arch, libc), localBuildPath(packageRoot)];
}

/**
 * The running process's C library. Without musl's loader (/lib/ld-musl-*) it is glibc: a readdir, no more. Where both
 * could be installed, Node's report decides (it names the glibc version it runs on; musl has none), at some 5 ms.
 */
export function detectLibc(): Libc {
  const lib = existsSync("/lib") ? readdirSync("/lib") : [];
  if (!lib.some((name) => name.startsWith("ld-musl-"))) return "glibc";
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return header?.glibcVersionRuntime ? "glibc" : "musl";
}
