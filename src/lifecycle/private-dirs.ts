// An extension's private HOME and tmp: made under a folder that names its host, so that the folders of a host that
// died (SIGKILL, power loss) can be reclaimed by the next one, and nothing that is not provably ours is ever removed.
//
// Layout: <tmpdir>/pyisolate-<name>-XXXXXX/ (mode 0700, from mkdtemp) holds `host` (the marker) and `home/`, `tmp/`.
// The marker is written before the extension exists, in the folder above the two it may write (bwrap binds only
// those; Landlock rules only those), so the extension cannot forge or change it.

import { constants } from "node:fs";
import { lstat, mkdir, mkdtemp, open, readdir, readFile, readlink, rm } from "node:fs/promises";
import { join } from "node:path";

const MARKER = "host";
const MARKER_MAX_BYTES = 200;
/** mkdtemp's names: the prefix, the extension's name, six random characters. */
const FOLDER = /^pyisolate-.+-[A-Za-z0-9]{6}$/;

/** Who made a folder: the host's pid, its start time (so a reused pid is not taken for it) and its pid namespace. */
export interface HostIdentity {
  pid: number;
  /** Field 22 of /proc/<pid>/stat: clock ticks after boot. */
  startTicks: string;
  pidNamespace: string;
}

export interface PrivateDirs {
  root: string;
  home: string;
  tmpdir: string;
}

/** This process's identity, or undefined where /proc cannot tell it (then no marker, no reclaiming). */
export async function selfIdentity(): Promise<HostIdentity | undefined> {
  const startTicks = await startTicksOf(process.pid);
  if (startTicks === undefined) return undefined;
  try {
    return { pid: process.pid, startTicks, pidNamespace: await readlink("/proc/self/ns/pid") };
  } catch {
    return undefined;
  }
}

/** Makes an extension's private folders under `parent`, the marker first. */
export async function makePrivateDirs(
  parent: string,
  name: string,
  self: HostIdentity | undefined,
): Promise<PrivateDirs> {
  const root = await mkdtemp(join(parent, `pyisolate-${name}-`));
  if (self) {
    // O_EXCL | O_NOFOLLOW: a fresh file in a folder only we can write (0700).
    const file = await open(
      join(root, MARKER),
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o600,
    );
    try {
      await file.writeFile(formatMarker(self));
    } finally {
      await file.close();
    }
  }
  const dirs = { root, home: join(root, "home"), tmpdir: join(root, "tmp") };
  await mkdir(dirs.home);
  await mkdir(dirs.tmpdir);
  return dirs;
}

/** Pure: the marker's text. */
export function formatMarker(identity: HostIdentity): string {
  return `pyisolate-host ${identity.pid} ${identity.startTicks} ${identity.pidNamespace}\n`;
}

/** Pure: a marker's identity, or undefined when the text is not one we write. */
export function parseMarker(text: string): HostIdentity | undefined {
  const match = /^pyisolate-host ([1-9]\d{0,9}) (\d{1,20}) (pid:\[\d{1,20}\])\n$/.exec(text);
  return match ? { pid: Number(match[1]), startTicks: match[2]!, pidNamespace: match[3]! } : undefined;
}

/**
 * Pure: may a folder marked by `owner` be reclaimed by `self`, given the owner pid's start time now (undefined: no
 * such process)? Only when the owner is provably dead: same pid namespace (a pid of another one means nothing here),
 * and the pid gone or now another process (started at another time). Never our own.
 */
export function ownerIsDead(owner: HostIdentity, self: HostIdentity, ownerStartNow: string | undefined): boolean {
  if (owner.pidNamespace !== self.pidNamespace) return false;
  if (owner.pid === self.pid && owner.startTicks === self.startTicks) return false;
  return ownerStartNow === undefined || ownerStartNow !== owner.startTicks;
}

/**
 * Removes the private folders under `parent` whose host is dead. A folder is ours only when it is a real folder (not
 * a symlink) named as we name them, owned by this uid, holding a marker that is a regular file of this uid in our
 * format; anything else is left alone. Returns the folders removed.
 */
export async function reclaimPrivateDirs(parent: string, self: HostIdentity): Promise<string[]> {
  const removed: string[] = [];
  let entries: string[];
  try {
    entries = await readdir(parent);
  } catch {
    return removed;
  }
  const uid = process.getuid?.();
  for (const entry of entries) {
    if (!FOLDER.test(entry)) continue;
    const root = join(parent, entry);
    try {
      const folder = await lstat(root);
      if (!folder.isDirectory() || folder.uid !== uid) continue;
      const owner = await readOwner(join(root, MARKER), uid);
      if (!owner || !ownerIsDead(owner, self, await startTicksOf(owner.pid))) continue;
      // rm never follows a symlink inside: it unlinks the link. Nothing of a dead host is running in there.
      await rm(root, { recursive: true, force: true });
      removed.push(root);
    } catch {
      // Gone meanwhile, or unreadable: not provably ours, left alone.
    }
  }
  return removed;
}

async function readOwner(path: string, uid: number | undefined): Promise<HostIdentity | undefined> {
  const file = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const info = await file.stat();
    if (!info.isFile() || info.uid !== uid || info.size > MARKER_MAX_BYTES) return undefined;
    return parseMarker(await file.readFile("utf8"));
  } finally {
    await file.close();
  }
}

/** The start time of process `pid` (field 22 of its stat), or undefined when there is no such process. */
async function startTicksOf(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}
