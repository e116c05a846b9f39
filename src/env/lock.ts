// Serialise work on one venv: a promise chain within this process plus a lock file (owner pid) across processes.

import { randomBytes } from "node:crypto";
import { link, readFile, readdir, rename, stat, unlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { CallAbortedError } from "../errors.js";

/** What a lock file holds. */
export interface LockOwner {
  pid: number;
  hostname: string;
  acquiredAt: string;
}

export interface LockOptions {
  signal?: AbortSignal;
  /** Called once, when the lock is busy and this call starts to wait; `owner` is undefined when another call in this process holds it. */
  onWait?: (owner: LockOwner | undefined) => void;
  /** Longest pause between two tries; the first pauses are shorter. */
  maxPollMs?: number;
}

const UNREADABLE_STALE_MS = 30_000;

// Process-wide on purpose: the lock file is per process, so two callers in one process must queue here,
// whatever object they came through. Entries are removed when their chain drains.
const chains = new Map<string, Promise<void>>();

/** Run `fn` while holding the lock at `lockPath`, after every earlier holder in this process and in others. */
export async function withLock<T>(lockPath: string, options: LockOptions, fn: () => Promise<T>): Promise<T> {
  const previous = chains.get(lockPath);
  let done!: () => void;
  const mine = new Promise<void>((resolve) => (done = resolve));
  const tail = (previous ?? Promise.resolve()).then(() => mine);
  chains.set(lockPath, tail);
  let notified = false;
  const onWait = (owner: LockOwner | undefined): void => {
    if (!notified) options.onWait?.(owner);
    notified = true;
  };
  try {
    if (previous) {
      onWait(undefined);
      await abortable(previous, options.signal, lockPath);
    }
    const release = await acquireLockFile(lockPath, { ...options, onWait });
    try {
      return await fn();
    } finally {
      await release();
    }
  } finally {
    done();
    if (chains.get(lockPath) === tail) chains.delete(lockPath);
  }
}

/** Take the lock file (waiting while a live process holds it, taking it over from a dead one); resolves to its release. */
export async function acquireLockFile(lockPath: string, options: LockOptions = {}): Promise<() => Promise<void>> {
  const me: LockOwner = { pid: process.pid, hostname: hostname(), acquiredAt: new Date().toISOString() };
  const content = JSON.stringify(me);
  const draft = `${lockPath}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`;
  await writeFile(draft, content);
  try {
    for (let attempt = 0; ; attempt++) {
      if (options.signal?.aborted) throw abortError(lockPath, options.signal.reason);
      try {
        // link() fails with EEXIST when the lock is held, and the file it makes is already complete.
        await link(draft, lockPath);
        await removeDeadDrafts(lockPath);
        return () => releaseLockFile(lockPath, content);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
      const owner = await readOwner(lockPath);
      if (owner === "missing") continue;
      if (owner === "unreadable" ? await isOld(lockPath) : isDead(owner)) {
        await takeOver(lockPath, owner);
        continue;
      }
      options.onWait?.(owner === "unreadable" ? undefined : owner);
      const pause = Math.min(options.maxPollMs ?? 500, 50 * 2 ** Math.min(attempt, 4));
      await sleep(pause, undefined, { signal: options.signal }).catch(() => {
        throw abortError(lockPath, options.signal?.reason);
      });
    }
  } finally {
    await unlink(draft).catch(() => {});
  }
}

/** Who holds the lock: "missing" if it was just released, "unreadable" if it is not a lock file of ours. */
export async function readOwner(lockPath: string): Promise<LockOwner | "missing" | "unreadable"> {
  let text: string;
  try {
    text = await readFile(lockPath, "utf8");
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ENOENT" ? "missing" : "unreadable";
  }
  try {
    const o = JSON.parse(text) as Partial<LockOwner>;
    if (typeof o.pid === "number" && typeof o.hostname === "string" && typeof o.acquiredAt === "string")
      return o as LockOwner;
  } catch {
    // fall through
  }
  return "unreadable";
}

/** A holder is dead only when it is on this host and its pid is gone; elsewhere we cannot tell, so we wait. */
export function isDead(owner: LockOwner): boolean {
  if (owner.hostname !== hostname() || owner.pid === process.pid) return false;
  try {
    process.kill(owner.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ESRCH";
  }
}

async function isOld(lockPath: string): Promise<boolean> {
  const s = await stat(lockPath).catch(() => undefined);
  return s !== undefined && Date.now() - s.mtimeMs > UNREADABLE_STALE_MS;
}

/** Move a stale lock aside; if a racing waiter replaced it meanwhile, put theirs back. */
async function takeOver(lockPath: string, stale: LockOwner | "unreadable"): Promise<void> {
  const aside = `${lockPath}.stale-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    await rename(lockPath, aside);
  } catch {
    return; // someone else took it over first
  }
  const moved = await readOwner(aside);
  const same =
    stale === "unreadable"
      ? moved === "unreadable"
      : typeof moved === "object" && moved.pid === stale.pid && moved.acquiredAt === stale.acquiredAt;
  if (!same) await link(aside, lockPath).catch(() => {});
  await unlink(aside).catch(() => {});
}

/** Drafts and moved-aside locks that a crashed process left next to the lock; only their dead owners' are removed. */
async function removeDeadDrafts(lockPath: string): Promise<void> {
  const dir = path.dirname(lockPath);
  const base = path.basename(lockPath).replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const re = new RegExp(`^${base}\\.(?:stale-)?(\\d+)-[0-9a-f]{8}(?:\\.tmp)?$`);
  for (const entry of await readdir(dir).catch(() => [] as string[])) {
    const pid = Number(re.exec(entry)?.[1]);
    if (pid && isDead({ pid, hostname: hostname(), acquiredAt: "" }))
      await unlink(path.join(dir, entry)).catch(() => {});
  }
}

async function releaseLockFile(lockPath: string, content: string): Promise<void> {
  // Only remove the lock if it is still ours (it could have been taken over if this process looked dead).
  const now = await readFile(lockPath, "utf8").catch(() => undefined);
  if (now === content) await unlink(lockPath).catch(() => {});
}

function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined, lockPath: string): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(abortError(lockPath, signal.reason));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortError(lockPath, signal.reason));
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

function abortError(lockPath: string, reason: unknown): CallAbortedError {
  return new CallAbortedError(`aborted while waiting for the lock ${lockPath}`, { cause: reason });
}
