// The Landlock install sandbox (hosts where bwrap cannot run): real installs, its cost, and the malicious sdist's attacks.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { existsSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ensureEnvironment, findUv, resolvePython, type EnvironmentSpec } from "../src/env/builder.js";
import { LANDLOCK_NET_ABI } from "../src/sandbox/choose.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import {
  attackEnv,
  assertNoLeak,
  buildEvil,
  setUpAttack,
  type AttackScene,
  type EvilBuild,
} from "./fixtures/env/evil-sdist.js";
import { fixtureIndex, HELLO, leftovers, py, recorder, tempRoot } from "./fixtures/env/helpers.js";

const caps = await detectSandbox();
const abi = caps.landlockAbi;
const skip = abi > 0 ? false : `the kernel offers no Landlock: ${caps.gaps.map((g) => g.problem).join("; ")}`;
const uv = await findUv();
const root = tempRoot("pyisolate-env-landlock-");
/** Forced, so that the Landlock path runs on a host where bwrap works too. */
const LANDLOCK = { mode: "required", backend: "landlock" } as const;
const UDP_MARK = "udp-from-build";

let base: Omit<EnvironmentSpec, "name" | "dependencies">;
let links = "";
let scene: AttackScene;
let attackBase: Omit<EnvironmentSpec, "name" | "dependencies" | "installer">;
/** The host's listeners the attack reaches for beyond TCP: an abstract and a pathname Unix socket, a UDP port. */
let abstractServer: Server | undefined;
let pathServer: Server | undefined;
let udp: UdpSocket | undefined;
let udpReceived = "";

/** The private home and tmp a Landlock install announced (removed when the install ends). */
function privateRoot(messages: string[]): string {
  const line = messages.find((m) => m.includes("private home and tmp in "));
  assert.ok(line, "the Landlock sandbox is announced with its private folders");
  return line.slice(line.indexOf("private home and tmp in ") + "private home and tmp in ".length);
}

before(async () => {
  if (skip) return;
  const index = fixtureIndex(path.join(root.dir, "index"), ["1.0"]);
  links = fixtureIndex(path.join(root.dir, "links"), ["2.0"]).wheels;
  const python = await resolvePython(undefined);
  const env = {
    ...process.env,
    PIP_CACHE_DIR: path.join(root.dir, "host-cache", "pip"),
    UV_CACHE_DIR: path.join(root.dir, "host-cache", "uv"),
  };
  base = {
    venvRoot: path.join(root.dir, "venvs"),
    python: python.path,
    indexUrl: index.indexUrl,
    runtimeVersion: "0.1.0-test",
    env,
  };

  const abstractName = `pyisolate-test-${randomBytes(6).toString("hex")}`;
  // Node pads an abstract name with NULs to the full sun_path (108 bytes): the attacker connects to that name.
  // The attacker only connects: accept, close, and ignore the resets its early close causes.
  const accept = (s: Socket): void => void s.on("error", () => {}).end();
  abstractServer = createServer(accept).listen(`\0${abstractName}`);
  const socketPath = path.join(root.dir, "host.sock");
  pathServer = createServer(accept).listen(socketPath);
  udp = createSocket("udp4").on("message", (m) => (udpReceived += m.toString()));
  await new Promise<void>((resolve) => udp!.bind(0, "127.0.0.1", resolve));
  const unix = (addr: string): string =>
    `(lambda s: (s.connect(${addr}), "connected")[1])(socket.socket(socket.AF_UNIX))`;
  scene = await setUpAttack(root.dir, {
    abstract: unix(`(chr(0) + ${JSON.stringify(abstractName)}).ljust(108, chr(0))`),
    unix_path: unix(JSON.stringify(socketPath)),
    udp: `socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"${UDP_MARK}", ("127.0.0.1", ${udp.address().port}))`,
    signal: `os.kill(${process.pid}, 0)`,
    proc: `len(open("/proc/${process.pid}/environ", "rb").read())`,
    // The secret's own path: its existence (not its content) is what stat() gives away.
    exists: `os.path.exists(CFG["secret"])`,
  });
  attackBase = { ...base, findLinks: [scene.sdists], env: attackEnv(scene, root.dir) };
});
after(() => {
  abstractServer?.close();
  pathServer?.close();
  udp?.close();
  scene?.close();
  root.remove();
});

describe("Landlock install sandbox: real installs", { skip }, () => {
  it("pip installs from a local find-links folder under Landlock, without TCP; the private home and tmp are removed", async () => {
    const rec = recorder();
    const network = abi < LANDLOCK_NET_ABI;
    const e = await ensureEnvironment({
      ...base,
      name: "ll-pip",
      installer: "pip",
      findLinks: [links],
      dependencies: ["pyisolate-fixture-hello==2.0"],
      sandbox: { ...LANDLOCK, network },
      onProgress: rec.onProgress,
    });
    assert.equal(e.installSandbox, "landlock");
    const messages = rec.events.map((ev) => ev.message);
    assert.ok(
      messages.some((m) => m.startsWith(`install sandbox: landlock (ABI ${abi})`)),
      messages.join("\n"),
    );
    assert.ok(rec.events.some((ev) => ev.line?.includes("Successfully installed pyisolate-fixture-hello-2.0")));
    assert.equal(py(e.pythonPath, HELLO), "2.0");
    assert.ok(existsSync(path.join(base.venvRoot, ".cache", "ll-pip", "pip")), "pip's cache is the environment's own");
    assert.ok(!existsSync(privateRoot(messages)), "the private home and tmp are gone");
    assert.deepEqual(leftovers(base.venvRoot), []);
  });

  it(
    "uv installs from a local find-links folder under Landlock",
    { skip: uv ? false : "uv is not on PATH" },
    async () => {
      const rec = recorder();
      const e = await ensureEnvironment({
        ...base,
        name: "ll-uv",
        installer: "uv",
        findLinks: [links],
        dependencies: ["pyisolate-fixture-hello==2.0"],
        sandbox: { ...LANDLOCK, network: abi < LANDLOCK_NET_ABI },
        onProgress: rec.onProgress,
      });
      assert.equal(e.installSandbox, "landlock");
      assert.ok(rec.events.some((ev) => ev.line?.includes("+ pyisolate-fixture-hello==2.0")));
      assert.equal(py(e.pythonPath, HELLO), "2.0");
      assert.ok(!existsSync(privateRoot(rec.events.map((ev) => ev.message))));
    },
  );

  it("where bwrap is missing, `auto` confines the install with Landlock instead of failing (the Landlock-only host)", async () => {
    const rec = recorder();
    const e = await ensureEnvironment({
      ...base,
      name: "ll-auto",
      installer: "pip",
      dependencies: ["pyisolate-fixture-hello==1.0"],
      sandbox: { mode: "required", bwrapPath: "/nonexistent/bwrap" },
      onProgress: rec.onProgress,
    });
    assert.equal(e.installSandbox, "landlock");
    assert.ok(
      rec.events.some((ev) => /bubblewrap cannot run here.*Landlock instead/.test(ev.message)),
      "the fallback is said",
    );
    assert.ok(!rec.events.some((ev) => ev.warning), "not a warning: the install is confined");
    assert.equal(py(e.pythonPath, HELLO), "1.0");
  });
});

/** Landlock's verdicts, per ABI: what it stops, and (asserted, so that docs/environments.md stays true) what it does not. */
function assertLandlockContained(r: EvilBuild, network: boolean): void {
  const { e, loot } = r;
  const failed = (key: string): string => (loot[key] as [string, unknown])[0];
  assert.equal(e.installSandbox, "landlock");
  // Stopped: reading the planted secret, listing the home, writing outside the build folder and cache.
  assert.equal(failed("secret"), "PermissionError", `secret: ${JSON.stringify(loot.secret)}`);
  assert.equal(failed("list_home"), "PermissionError", `home: ${JSON.stringify(loot.list_home)}`);
  assert.ok(
    String(loot.home).startsWith(path.join(tmpdir(), "pyisolate-install-")),
    `HOME is the private one: ${loot.home}`,
  );
  assert.ok(!existsSync(String(loot.home)), "and it was removed");
  assert.equal(failed("pwn0"), "PermissionError", "no write into the host's /tmp");
  assert.ok(!existsSync(scene.pwnTmp));
  assert.equal(failed("pwn1"), "PermissionError", "no write into the host's home");
  assert.ok(!existsSync(scene.pwnHome));
  assert.equal(failed("proc"), "PermissionError", "no /proc of the host");
  assert.equal(failed("signal"), abi >= 6 ? "PermissionError" : "ok", `kill(host, 0): ${JSON.stringify(loot.signal)}`);
  // Unix sockets, abstract or by path: the launcher's seccomp filter refuses socket(AF_UNIX) at any ABI.
  assert.equal(failed("abstract"), "PermissionError", `abstract Unix socket: ${JSON.stringify(loot.abstract)}`);
  assert.equal(failed("unix_path"), "PermissionError", `a host Unix socket by path: ${JSON.stringify(loot.unix_path)}`);
  // TCP: open with the network (the registries), denied without it (ABI >= 4). UDP the same, by the seccomp filter.
  assert.equal(failed("phone"), network ? "ok" : "PermissionError", `phone home: ${JSON.stringify(loot.phone)}`);
  assert.equal(failed("udp"), network ? "ok" : "PermissionError", `UDP: ${JSON.stringify(loot.udp)}`);
  assert.equal(udpReceived.includes(UDP_MARK), network);
  // Not stopped, by design of Landlock: metadata.
  assert.deepEqual(loot.exists, ["ok", true], "stat() works anywhere: the secret file's existence shows");
  assertNoLeak(scene, r, attackBase.venvRoot);
}

describe("Landlock install sandbox: a malicious sdist", { skip }, () => {
  it("control: unconfined, every attack works (secret, writes, TCP, UDP, both Unix sockets, signal, /proc)", async () => {
    udpReceived = "";
    const r = await buildEvil(scene, attackBase, "ll-evil-control", "pip", { mode: "disabled" });
    const ok = (key: string): boolean => (r.loot[key] as [string, unknown])[0] === "ok";
    assert.deepEqual(r.loot.secret, ["ok", scene.secret]);
    for (const key of ["list_home", "pwn0", "pwn1", "phone", "udp", "unix_path", "abstract", "signal", "proc"])
      assert.ok(ok(key), `${key}: ${JSON.stringify(r.loot[key])}`);
    assert.ok(scene.received().includes(scene.secret) && udpReceived.includes(UDP_MARK));
    rmSync(scene.pwnTmp, { force: true });
    rmSync(scene.pwnHome, { force: true });
  });

  it("pip under Landlock with the network: the install succeeds, the secret and the host's files stay out of reach", async () => {
    udpReceived = "";
    assertLandlockContained(await buildEvil(scene, attackBase, "ll-evil-pip", "pip", LANDLOCK), true);
  });

  it(
    "pip under Landlock without the network: TCP and UDP are denied too",
    { skip: abi >= LANDLOCK_NET_ABI ? false : `Landlock ABI ${abi} < ${LANDLOCK_NET_ABI}: no TCP rules` },
    async () => {
      udpReceived = "";
      assertLandlockContained(
        await buildEvil(scene, attackBase, "ll-evil-pip-offline", "pip", { ...LANDLOCK, network: false }),
        false,
      );
    },
  );

  it("uv under Landlock: the same attack is contained", { skip: uv ? false : "uv is not on PATH" }, async () => {
    udpReceived = "";
    assertLandlockContained(await buildEvil(scene, attackBase, "ll-evil-uv", "uv", LANDLOCK), true);
  });
});
