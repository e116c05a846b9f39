// The container engines the matrix drives: starting (and stopping) dockerd, the image cached by a hash of its inputs,
// and the argv that runs one container under Docker, rootful podman or rootless podman.

import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";

export const sh = (argv, options = {}) =>
  spawnSync(argv[0], argv.slice(1), { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, ...options });
const ok = (argv, options) => sh(argv, options).status === 0;

/** The user rootless podman runs as: created with subordinate ids when missing (useradd assigns them on Debian). */
export const ROOTLESS_USER = "pyisolate-podman";

/**
 * A reachable Docker daemon. When none runs, starts Debian's dockerd and returns a stop() that ends that process (by
 * its pid, and only it), so the matrix does not leave a daemon holding the machine. `reason` says why there is none.
 */
export function ensureDocker(logFile) {
  if (ok(["docker", "version", "--format", "{{.Server.Version}}"])) return { stop: () => {} };
  if (!ok(["sh", "-c", "command -v dockerd"])) return { reason: "no dockerd (apt-get install docker.io debootstrap)" };
  if (process.getuid() !== 0) return { reason: "starting dockerd needs root" };
  const log = openSync(logFile, "a");
  const daemon = spawn("dockerd", [], { detached: true, stdio: ["ignore", log, log] });
  for (let i = 0; i < 60; i++) {
    if (ok(["docker", "version", "--format", "{{.Server.Version}}"])) return { stop: () => stopDaemon(daemon) };
    if (daemon.exitCode !== null) break;
    sh(["sleep", "1"]);
  }
  stopDaemon(daemon);
  const tail = existsSync(logFile) ? readFileSync(logFile, "utf8").trim().split("\n").slice(-3).join(" | ") : "";
  return { reason: `dockerd did not start: ${tail}` };
}

function stopDaemon(daemon) {
  if (daemon.exitCode !== null || daemon.pid === undefined) return;
  process.kill(daemon.pid, "SIGTERM");
  for (let i = 0; i < 30 && ok(["kill", "-0", String(daemon.pid)]); i++) sh(["sleep", "1"]);
}

/**
 * The image's tag: a hash of everything the tarball is made from (the build script, this Node, the Debian suite and
 * the apt sources), so a changed input builds a new image and an unchanged one is never rebuilt.
 */
export function imageKey(scriptPath) {
  const hash = createHash("sha256");
  hash.update(readFileSync(scriptPath));
  hash.update(`${process.version} ${process.arch} ${readFileSync(process.execPath).length}`);
  for (const f of ["/etc/os-release", "/etc/apt/sources.list", ...listed("/etc/apt/sources.list.d")])
    if (existsSync(f)) hash.update(readFileSync(f));
  return hash.digest("hex").slice(0, 12);
}

const listed = (dir) => (existsSync(dir) ? readdirSync(dir).map((f) => path.join(dir, f)) : []);

/** Builds the tarball unless cached, drops tarballs of other keys, and imports it into Docker under `tag`. */
export function ensureImage(scriptPath, cacheDir, key, tag) {
  const tarball = path.join(cacheDir, `rootfs-${key}.tar`);
  const started = Date.now();
  if (sh(["bash", scriptPath, tarball], { stdio: "inherit" }).status !== 0)
    return { reason: "the image could not be built (see above)" };
  for (const f of listed(cacheDir)) if (f !== tarball && /rootfs-[0-9a-f]+\.tar/.test(f)) rmSync(f, { force: true });
  if (!ok(["docker", "image", "inspect", tag])) {
    const r = sh(["docker", "import", tarball, tag]);
    if (r.status !== 0) return { reason: `docker import failed: ${r.stderr.trim()}` };
  }
  return { tarball, seconds: Math.round((Date.now() - started) / 1000) };
}

const podmanEnv = () => ({ XDG_RUNTIME_DIR: `/tmp/${ROOTLESS_USER}-run` });

/** The command prefix for one engine, with its cwd and environment. */
function enginePrefix(engine) {
  // runc, not Debian's crun 1.8: crun refuses a host with cgroup v1 and a cgroup2 mount beside it ("hybrid mode").
  // The nofile and nproc limits: rootful podman otherwise raises both to values only CAP_SYS_RESOURCE may set.
  if (engine === "podman")
    return ["podman", "--runtime", "runc", "run", "--ulimit", "nofile=16384:16384", "--ulimit", "nproc=4096:4096"];
  if (engine === "podman-rootless")
    return [
      "runuser",
      "-u",
      ROOTLESS_USER,
      "--",
      "env",
      `XDG_RUNTIME_DIR=${podmanEnv().XDG_RUNTIME_DIR}`,
      "podman",
      "--runtime",
      "runc",
      "run",
      "--ulimit",
      "host",
    ];
  return ["docker", "run"];
}

/**
 * Ends rootless podman's pause process (it holds the user's namespaces after the last container, and would outlive
 * the matrix), by the pid podman wrote, and only that process.
 */
export function stopRootlessPause() {
  const file = path.join(podmanEnv().XDG_RUNTIME_DIR, "libpod", "tmp", "pause.pid");
  const pid = existsSync(file) ? Number.parseInt(readFileSync(file, "utf8"), 10) : Number.NaN;
  if (Number.isInteger(pid) && pid > 1) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      // already gone
    }
  }
}

export function runArgv(engine, name, options, mounts, tag, command) {
  return [...enginePrefix(engine), "--rm", "--name", name, ...options, ...mounts, tag, ...command];
}

/** Stops a container that outlived its time; `docker kill`/`podman kill` by the name it was given. */
export function killArgv(engine, name) {
  const prefix = enginePrefix(engine);
  return [...prefix.slice(0, prefix.indexOf(engine === "docker" ? "docker" : "podman") + 1), "kill", name];
}

/**
 * Makes the image usable by one podman engine: podman present, the rootless user with subordinate ids, the tarball
 * imported under `tag`, and a trivial container started. Returns the reason when the engine cannot run here.
 */
export function preparePodman(engine, tarball, tag) {
  if (!ok(["sh", "-c", "command -v podman && command -v runc"]))
    return "podman or runc is not installed (apt-get install podman)";
  const as =
    engine === "podman-rootless"
      ? ["runuser", "-u", ROOTLESS_USER, "--", "env", `XDG_RUNTIME_DIR=${podmanEnv().XDG_RUNTIME_DIR}`]
      : [];
  if (engine === "podman-rootless") {
    if (!ok(["id", ROOTLESS_USER]) && !ok(["useradd", "--create-home", "--shell", "/bin/sh", ROOTLESS_USER]))
      return `could not create the user ${ROOTLESS_USER}`;
    if (
      !sh(["cat", "/etc/subuid"])
        .stdout.split("\n")
        .some((l) => l.startsWith(`${ROOTLESS_USER}:`))
    )
      return `${ROOTLESS_USER} has no subordinate uids in /etc/subuid`;
    sh(["install", "-d", "-o", ROOTLESS_USER, "-m", "0700", podmanEnv().XDG_RUNTIME_DIR]);
  }
  const opts = { cwd: "/" };
  if (!ok([...as, "podman", "image", "exists", tag], opts)) {
    const r = sh([...as, "podman", "import", tarball, tag], opts);
    if (r.status !== 0) return `podman import failed: ${r.stderr.trim().split("\n").at(-1)}`;
  }
  const trial = sh([...enginePrefix(engine), "--rm", "--network", "none", tag, "true"], opts);
  return trial.status === 0
    ? undefined
    : `${engine} cannot start a container here: ${trial.stderr.trim().split("\n").at(-1)}`;
}
