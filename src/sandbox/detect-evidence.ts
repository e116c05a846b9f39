// Reads the evidence detection weighs besides the kernel files: mounts, the CPU's hypervisor flag, the LSM label.

import { readFile } from "node:fs/promises";
import type { HostFiles } from "./host-files.js";
import { readHostFiles } from "./host.js";

const read = (file: string): Promise<string | undefined> => readFile(file, "utf8").catch(() => undefined);

/** Every file detection parses, the container evidence included; absent files are undefined, never an error. */
export async function readEvidence(env: NodeJS.ProcessEnv = process.env): Promise<HostFiles> {
  const [files, mountinfo, cpuinfo, lsmLabel] = await Promise.all([
    readHostFiles(env),
    read("/proc/self/mountinfo"),
    read("/proc/cpuinfo"),
    read("/proc/self/attr/current"),
  ]);
  return {
    ...files,
    mountinfo,
    hypervisor: cpuinfo === undefined ? undefined : /^flags\s*:.*\bhypervisor\b/m.test(cpuinfo),
    // The kernel ends the label with a NUL or newline; "unconfined" says nothing and is kept as read.
    lsmLabel: lsmLabel?.replace(/\0/g, "").trim(),
  };
}
