// Impure helpers that read this host for the sandbox: kernel files, the root's layout, GPU nodes, the recorded Python.

import { execFile } from "node:child_process";
import { constants } from "node:fs";
import { access, readdir, readFile, readlink, realpath, stat } from "node:fs/promises";
import path from "node:path";
import type { HostFiles } from "./host-files.js";
import { dangerReason } from "./path-guard.js";

const read = (file: string): Promise<string | undefined> => readFile(file, "utf8").catch(() => undefined);
const exists = (file: string): Promise<boolean> =>
  stat(file).then(
    () => true,
    () => false,
  );

/** Read every file detection parses; absent files are undefined, never an error. */
export async function readHostFiles(env: NodeJS.ProcessEnv = process.env): Promise<HostFiles> {
  const [apparmor, maxNs, clone, lsm, status, cgroup, selinux, userNs, grsec, dockerenv, containerenv] =
    await Promise.all([
      read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"),
      read("/proc/sys/user/max_user_namespaces"),
      read("/proc/sys/kernel/unprivileged_userns_clone"),
      read("/sys/kernel/security/lsm"),
      read("/proc/self/status"),
      read("/proc/1/cgroup"),
      read("/sys/fs/selinux/enforce"),
      exists("/proc/self/ns/user"),
      exists("/proc/sys/kernel/grsecurity"),
      exists("/.dockerenv"),
      exists("/run/.containerenv"),
    ]);
  return {
    platform: process.platform,
    apparmorRestrictUserns: apparmor,
    maxUserNamespaces: maxNs,
    unprivilegedUsernsClone: clone,
    lsm,
    procSelfStatus: status,
    proc1Cgroup: cgroup,
    selinuxEnforce: selinux,
    userNsFile: userNs,
    grsecurity: grsec,
    dockerenv,
    containerenv,
    containerVar: env.container || undefined,
  };
}

/** The first executable called `name` on PATH. */
export async function findExecutable(name: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  if (path.isAbsolute(name))
    return (await access(name, constants.X_OK).then(
      () => true,
      () => false,
    ))
      ? name
      : undefined;
  for (const dir of (env.PATH ?? "").split(path.delimiter).filter((d) => path.isAbsolute(d))) {
    const file = path.join(dir, name);
    if (
      await access(file, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return file;
  }
  return undefined;
}

/** Top-level system folders that are links (merged /usr): { "/lib": "usr/lib", ... }. */
export async function readSystemLinks(): Promise<Record<string, string>> {
  const links: Record<string, string> = {};
  for (const dir of ["/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"]) {
    const target = await readlink(dir).catch(() => undefined);
    if (target !== undefined) links[dir] = target;
  }
  return links;
}

/** NVIDIA device nodes on this host (/dev/nvidia0, /dev/nvidiactl, /dev/nvidia-uvm, /dev/nvidia-caps, ...). */
export async function listGpuDevices(): Promise<string[]> {
  const entries = await readdir("/dev").catch(() => [] as string[]);
  return entries
    .filter((e) => e.startsWith("nvidia"))
    .sort()
    .map((e) => path.join("/dev", e));
}

/** The base interpreter a venv was built from, as the host recorded it (never as the venv's own files say). */
export interface BaseInterpreter {
  /** Its real path (symlinks resolved), as the host resolved it when it built the venv. */
  python: string;
  /** The venv sees the base interpreter's site-packages (the host's record, not pyvenv.cfg's line). */
  systemSitePackages: boolean;
}

/**
 * The Python install to bind read-only for a venv: the recorded base interpreter's real prefix (the folder above
 * its bin/) and, for a venv with system site-packages, the base's site-packages folders that lie outside it (see
 * `resolveSystemSitePackages`). Derived from the host's own record only: pyvenv.cfg and bin/python are the
 * install's to rewrite (`executable = /etc/passwd` once made this bind `/`). A prefix the path guard refuses
 * (`/`, `/home`, ...) is an error; /usr is bound anyway.
 */
export async function resolvePythonInstall(base: BaseInterpreter): Promise<string[]> {
  if (!path.isAbsolute(base.python))
    throw new Error(`the recorded interpreter "${base.python}" is not an absolute path`);
  const prefix = path.dirname(path.dirname(base.python));
  const danger = prefix === "/usr" ? undefined : dangerReason(prefix);
  if (danger) throw new Error(`the Python install ${prefix} (of ${base.python}) cannot be bound read-only: ${danger}`);
  if (!base.systemSitePackages) return [prefix];
  const covered = [prefix, "/usr"];
  const extra = (await resolveSystemSitePackages(base.python)).filter(
    (dir) => !covered.some((c) => isAtOrUnder(dir, c)),
  );
  return [prefix, ...extra];
}

function isAtOrUnder(p: string, root: string): boolean {
  return p === root || p.startsWith(root.endsWith("/") ? root : `${root}/`);
}

/** Prints the site-packages folders of the base prefixes, as `site.main()` adds them for `include-system-site-packages`. */
const SYSTEM_SITE_SCRIPT =
  "import site, sys; print('\\n'.join(site.getsitepackages([sys.base_prefix, sys.base_exec_prefix])))";

/**
 * The site-packages folders of the base interpreter `python` (real paths of those that exist), which a venv with
 * system site-packages reads. Asked of the recorded base interpreter itself (`-I -S`: no site, no `.pth` file
 * runs), never of anything in the venv, since the layout is the interpreter's (Debian's `dist-packages` under /usr
 * and /usr/local; Homebrew's, outside its Cellar prefix). Folders the path guard refuses (`/`, `/etc`, ...) are left
 * out: never bound, whatever an interpreter says.
 */
export async function resolveSystemSitePackages(python: string): Promise<string[]> {
  const r = await runQuiet([python, "-I", "-S", "-c", SYSTEM_SITE_SCRIPT], { timeoutMs: 30_000 });
  if (r.exitCode !== 0) throw new Error(`${python} did not list its base site-packages: ${r.stderr.trim()}`);
  const dirs: string[] = [];
  for (const line of r.stdout.split("\n").map((l) => l.trim())) {
    if (!path.isAbsolute(line)) continue;
    const real = await realpath(line).catch(() => undefined);
    if (real && !dangerReason(real) && !dirs.includes(real)) dirs.push(real);
  }
  return dirs;
}

export interface QuietResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

/** Run an argv without a shell and collect its output; never rejects (a spawn failure is exit null). */
export function runQuiet(
  argv: readonly string[],
  options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<QuietResult> {
  const [file, ...args] = argv;
  return new Promise((resolve) => {
    if (!file) return resolve({ exitCode: null, stdout: "", stderr: "empty argv" });
    execFile(
      file,
      args,
      { timeout: options.timeoutMs ?? 10_000, env: options.env, encoding: "utf8", maxBuffer: 1 << 20 },
      (error, stdout, stderr) => {
        if (!error) return resolve({ exitCode: 0, stdout, stderr });
        const code = (error as NodeJS.ErrnoException & { code?: unknown }).code;
        resolve({
          exitCode: typeof code === "number" ? code : null,
          stdout: stdout ?? "",
          stderr: stderr || error.message,
        });
      },
    );
  });
}
