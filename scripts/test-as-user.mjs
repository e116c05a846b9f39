#!/usr/bin/env node
// Runs the guest runtime's tests and the host's sandbox, environment, trust-boundary, tensor and platform tests
// again as an unprivileged user when the suite runs as root.
//
// Most users are not root, and root hides bugs: it reads any file, gets capabilities in every namespace and can
// renice anything. So a root run of `npm test` also runs these files as `nobody` (or PYISOLATE_TEST_USER), from a
// copy of the checkout that user owns (the checkout may sit under a home the user cannot enter), with a Python the
// user can execute (/usr/bin/python3; pyenv's usually lives under /root) and a copy of uv when root has one.
// Run as a non-root user, this script has nothing to add: the main run already was unprivileged.

import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
/**
 * The test files whose behaviour depends on who runs them: sandboxes, installs, the trust boundary, process trees,
 * tensors (memfds, file segments and the native addon as a user without CAP_IPC_LOCK or root's rlimits), platform.
 */
const PATTERNS = [
  /^sandbox-.*\.test\.ts$/,
  /^env-.*\.test\.ts$/,
  /^trust-.*\.test\.ts$/,
  /^resilience-.*\.test\.ts$/,
  /^extension-lifecycle\.test\.ts$/,
  /^config-vocab\.test\.ts$/,
  /^tensor-.*\.test\.ts$/,
  /^platform-.*\.test\.ts$/,
  /^pool-.*\.test\.ts$/,
  /^bytes-.*\.test\.ts$/,
  /^stream.*\.test\.ts$/,
  /^svcstream.*\.test\.ts$/,
  /^init-.*\.test\.ts$/,
  /^tcp-.*\.test\.ts$/,
  /^native-output.*\.test\.ts$/,
  /^native-pkg-prune\.test\.ts$/,
  /^tidy-.*\.test\.ts$/,
  /^compat-upstream.*\.test\.ts$/,
  /^compat-yaml.*\.test\.ts$/,
  // The Ray cluster the tests start runs as the same user, from the world-readable PYISOLATE_RAY_VENV (.ci/run).
  /^ray-.*\.test\.ts$/,
];
/** PYISOLATE_TEST_ONLY=<regex>: only the host test files whose names match, and not the guest's tests (a developer's rerun). */
const ONLY = process.env.PYISOLATE_TEST_ONLY ? new RegExp(process.env.PYISOLATE_TEST_ONLY) : undefined;
/** What the tests need of the checkout (the copy leaves out bench, docs, examples and caches; scripts: the matrix verdict test). */
const COPIED = [
  "package.json",
  "tsconfig.json",
  "tsconfig.test.json",
  "src",
  "test",
  "python",
  "native",
  "prebuilds",
  "node_modules",
  "dist",
  "scripts",
];
/**
 * Host variables the user's run keeps: locale, CI flag, the installers' settings (the local index, find-links), and
 * the machine's CA bundle and proxies (uv trusts only its own roots unless SSL_CERT_FILE names the system's).
 */
const KEPT_ENV =
  /^(PYISOLATE_RAY_VENV|LANG|LANGUAGE|LC_[A-Z_]+|TZ|CI|PIP_\w+|UV_\w+|SSL_CERT_(FILE|DIR)|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE|NODE_EXTRA_CA_CERTS|(http|https|no|all)_proxy|(HTTP|HTTPS|NO|ALL)_PROXY)$/;
const PYTHON = "/usr/bin/python3";

function skipOrFail(reason) {
  // On CI both runs are required; on a developer's machine a missing prerequisite is a skip that says why.
  if (process.env.CI) {
    console.error(`test-as-user: cannot run the unprivileged pass: ${reason}`);
    process.exit(1);
  }
  console.log(`test-as-user: skipped, ${reason}`);
  process.exit(0);
}

function lookupUser(name) {
  const r = spawnSync("getent", ["passwd", name], { encoding: "utf8" });
  const fields = r.status === 0 ? r.stdout.trim().split(":") : [];
  return fields.length >= 4 ? { name, uid: Number(fields[2]), gid: Number(fields[3]) } : undefined;
}

/** The uv binary root uses, if any (a pyenv shim is a script that the other user could not follow). */
function findUv() {
  for (const argv of [
    ["python3", "-c", "import uv; print(uv.find_uv_bin())"],
    ["sh", "-c", "command -v uv"],
  ]) {
    const r = spawnSync(argv[0], argv.slice(1), { encoding: "utf8" });
    const file = r.status === 0 ? r.stdout.trim() : "";
    if (file && existsSync(file) && !readFileHead(file).startsWith("#!")) return file;
  }
  return undefined;
}

function readFileHead(file) {
  const r = spawnSync("head", ["-c", "2", file], { encoding: "latin1" });
  return r.stdout ?? "";
}

function chownTree(dir, uid, gid) {
  execFileSync("chown", ["-R", `${uid}:${gid}`, dir]);
}

if (process.getuid() !== 0) {
  console.log(`test-as-user: running as uid ${process.getuid()}: the main run already was unprivileged`);
  process.exit(0);
}

const userName = process.env.PYISOLATE_TEST_USER || "nobody";
const user = lookupUser(userName);
if (!user || user.uid === 0) skipOrFail(`no unprivileged user "${userName}" on this machine (set PYISOLATE_TEST_USER)`);
if (!existsSync(PYTHON)) skipOrFail(`${PYTHON} is missing (apt-get install python3 python3-venv)`);

const work = mkdtempSync("/tmp/pyisolate-unprivileged-");
chmodSync(work, 0o755);
try {
  const tree = path.join(work, "tree");
  const bin = path.join(work, "bin");
  const home = path.join(work, "home");
  const tmp = path.join(work, "tmp");
  for (const dir of [tree, bin, home, tmp]) mkdirSync(dir);
  for (const entry of COPIED) {
    const from = path.join(ROOT, entry);
    if (existsSync(from))
      cpSync(from, path.join(tree, entry), {
        recursive: true,
        verbatimSymlinks: true,
        filter: (src) => !src.includes("__pycache__"),
      });
  }
  // The same installer settings as root's run: a machine's local index is often named in root's own pip.conf.
  for (const file of [".config/pip/pip.conf", ".pip/pip.conf"]) {
    const from = path.join(process.env.HOME ?? "/root", file);
    if (existsSync(from)) {
      mkdirSync(path.dirname(path.join(home, file)), { recursive: true });
      copyFileSync(from, path.join(home, file));
    }
  }
  const uv = findUv();
  if (uv) copyFileSync(uv, path.join(bin, "uv"));
  chownTree(work, user.uid, user.gid);

  const asUser = { uid: user.uid, gid: user.gid, cwd: tree };
  const venvCheck = spawnSync(PYTHON, ["-c", "import venv, ensurepip"], { ...asUser, encoding: "utf8" });
  if (venvCheck.status !== 0) {
    rmSync(work, { recursive: true, force: true });
    skipOrFail(`${PYTHON} cannot make venvs as ${userName} (apt-get install python3-venv): ${venvCheck.stderr.trim()}`);
  }

  const env = {
    PATH: `${bin}:/usr/local/bin:/usr/bin:/bin`,
    HOME: home,
    TMPDIR: tmp,
    USER: userName,
    LOGNAME: userName,
  };
  for (const [key, value] of Object.entries(process.env))
    if (value !== undefined && KEPT_ENV.test(key)) env[key] = value;
  const files = readdirSync(path.join(tree, "test"))
    .filter((f) => PATTERNS.some((p) => p.test(f)) && (!ONLY || ONLY.test(f)))
    .sort()
    .map((f) => path.join("test", f));
  console.log(
    `test-as-user: ${files.length} test files as ${userName} (uid ${user.uid}) with ${PYTHON}${uv ? " and uv" : ", no uv"}`,
  );
  // The guest runtime's own tests (Landlock, seccomp, the launchers) with the system Python, then the host's.
  console.log(
    ONLY
      ? `test-as-user: PYISOLATE_TEST_ONLY is set: the guest runtime's tests are left out`
      : `test-as-user: the guest runtime's tests as ${userName} with ${PYTHON}`,
  );
  const python = ONLY
    ? { status: 0 }
    : spawnSync(PYTHON, ["-m", "unittest", "discover", "-s", "python/tests", "-t", "python"], {
        ...asUser,
        env,
        stdio: "inherit",
        timeout: 600_000,
      });
  // spec, as `npm run test:node`: its summary ends with the failing tests, where the tail of a CI log shows them.
  const run = spawnSync(
    process.execPath,
    ["--import", "tsx", "--test", "--test-concurrency=2", "--test-reporter=spec", ...files],
    {
      ...asUser,
      env,
      stdio: "inherit",
    },
  );
  process.exitCode = python.status === 0 && run.status === 0 ? 0 : 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}
