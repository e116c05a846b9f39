// A hostile sdist probes the host while it is built for a load that says network: false; bwrap and Landlock refuse every probe.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { findUv, resolvePython, type EnvironmentSpec } from "../src/env/builder.js";
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
import { tempRoot } from "./fixtures/env/helpers.js";
import {
  copyFiles,
  plantNeighbours,
  startHostServices,
  startHttpIndex,
  type HostServices,
  type HttpIndex,
} from "./fixtures/env/trust-install-scene.js";

const caps = await detectSandbox();
const bwrapSkip =
  caps.bwrap !== undefined && (caps.backend === "bwrap" || caps.backend === "bwrap-degraded")
    ? false
    : `bwrap cannot run here (model ${caps.model})`;
const landlockSkip =
  caps.landlockAbi >= LANDLOCK_NET_ABI
    ? false
    : `Landlock ABI ${caps.landlockAbi} cannot confine TCP (needs ${LANDLOCK_NET_ABI})`;
const uvSkip = (await findUv()) ? false : "uv is not on PATH";
const root = tempRoot("pyisolate-trust-install-");
let scene: AttackScene;
let services: HostServices;
let index: HttpIndex;
let neighbours: ReturnType<typeof plantNeighbours>;
let extensionDir: string;
let base: Omit<EnvironmentSpec, "name" | "dependencies" | "installer">;

before(async () => {
  services = await startHostServices();
  neighbours = plantNeighbours(root.dir);
  const svc = services.servicePort;
  scene = await setUpAttack(root.dir, {
    // Through whatever proxy the install was given (none in the control): the host's HTTP service.
    service_http: `__import__('urllib.request').request.urlopen('http://127.0.0.1:${svc}/secret', timeout=5).read().decode()`,
    // Straight at the proxy: a tunnel to the host's loopback.
    proxy_connect: `(lambda s: (s.sendall(b'CONNECT 127.0.0.1:${svc} HTTP/1.1\\r\\n\\r\\n'), s.recv(200).decode())[1])(socket.create_connection(('127.0.0.1', int(os.environ['HTTPS_PROXY'].rsplit(':', 1)[1])), timeout=5))`,
    // Node binds an abstract name padded with NULs to the whole sun_path: the probe connects to the same 108 bytes.
    abstract: `(lambda s: (s.connect(b'\\0${services.abstractName}'.ljust(108, b'\\0')), 'connected')[1])(socket.socket(socket.AF_UNIX))`,
    udp: `socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'probe', ('127.0.0.1', ${services.udpPort}))`,
    other_ext: `open(${JSON.stringify(neighbours.otherSecretFile)}).read()`,
    unconfigured: `os.listdir(${JSON.stringify(neighbours.unconfigured)})`,
  });
  // The sdist is served by a local HTTP index the host configured: the confined install can fetch it only through the proxy.
  const files = path.join(root.dir, "index-files");
  copyFiles(scene.sdists, files);
  index = await startHttpIndex(files);
  extensionDir = path.join(root.dir, "extensions", "evil_ext");
  mkdirSync(extensionDir, { recursive: true });
  const python = await resolvePython(undefined);
  base = {
    venvRoot: path.join(root.dir, "venvs"),
    python: python.path,
    indexUrl: index.url,
    runtimeVersion: "0.1.0-test",
    env: attackEnv(scene, root.dir),
  };
});
after(async () => {
  scene?.close();
  await services?.close();
  await index?.close();
  root.remove();
});

/** A load's install options: no network, the index named by the host's code, the extension's folder. */
function loadSandbox(mode: "required" | "disabled", backend?: "bwrap" | "landlock"): EnvironmentSpec["sandbox"] {
  return {
    mode,
    ...(backend ? { backend } : {}),
    network: false,
    extensionDir,
    trustedIndex: { indexUrl: index.url, extraIndexUrls: [], findLinks: [] },
  };
}

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 200));
const ok = (r: EvilBuild, key: string): boolean => (r.loot[key] as [string, unknown])[0] === "ok";

async function attack(
  name: string,
  backend: "pip" | "uv",
  mode: "required" | "disabled",
  sandbox?: "bwrap" | "landlock",
): Promise<EvilBuild> {
  services.reset();
  const hits = index.hits();
  const r = await buildEvil(scene, base, name, backend, loadSandbox(mode, sandbox));
  await settle();
  assert.ok(index.hits() > hits, "the sdist was fetched from the host-configured HTTP index");
  return r;
}

function assertControl(r: EvilBuild): void {
  assert.equal(r.e.installSandbox, "none");
  assert.deepEqual(r.loot.secret, ["ok", scene.secret], "the planted home secret is readable");
  assert.deepEqual(r.loot.other_ext, ["ok", neighbours.otherSecret], "another extension's folder is readable");
  assert.ok(ok(r, "unconfigured"), `an unconfigured wheel folder is listable: ${JSON.stringify(r.loot.unconfigured)}`);
  assert.deepEqual(r.loot.service_http, ["ok", services.serviceSecret], "the host's loopback HTTP service answers");
  assert.deepEqual(r.loot.abstract, ["ok", "connected"]);
  // uv may run the build hook more than once: at least one of each probe arrived.
  assert.ok(services.abstractSeen() >= 1, "the abstract socket saw the connection");
  assert.ok(services.udpSeen() >= 1, "the UDP datagram reached the host");
  assert.ok(scene.received().includes(scene.secret), "the phone-home TCP connection carried the secret");
}

function assertContained(r: EvilBuild, kind: string): void {
  assert.equal(r.e.installSandbox, kind);
  for (const key of ["secret", "other_ext", "unconfigured", "service_http", "abstract", "phone"])
    assert.ok(!ok(r, key), `${key} must be refused: ${JSON.stringify(r.loot[key])}`);
  const tunnel = r.loot.proxy_connect as [string, string];
  assert.ok(
    tunnel[0] === "ok" && tunnel[1].startsWith("HTTP/1.1 403"),
    `the proxy refuses a tunnel to the host's loopback: ${JSON.stringify(tunnel)}`,
  );
  assert.equal(services.serviceSeen(), 0, "the host's HTTP service was never reached");
  assert.equal(services.abstractSeen(), 0, "nor its abstract socket");
  assert.equal(services.udpSeen(), 0, "nor its UDP port");
  assert.equal(scene.received(), "", "nor the phone-home server");
  assert.match(
    r.output,
    new RegExp(
      `install proxy: refused (GET http://127\\.0\\.0\\.1:${services.servicePort}/secret|CONNECT 127\\.0\\.0\\.1:${services.servicePort})`,
    ),
  );
  assertNoLeak(scene, r, base.venvRoot);
}

describe("install of a hostile sdist for a load with network: false", () => {
  it("control: unconfined, pip's build code reads the home, another extension and an unconfigured folder, and reaches the host's TCP, UDP, HTTP and abstract sockets", async () => {
    assertControl(await attack("trust-control-pip", "pip", "disabled"));
  });

  it("control: unconfined, uv's build code reaches all of them too", { skip: uvSkip }, async () => {
    assertControl(await attack("trust-control-uv", "uv", "disabled"));
  });

  it(
    "pip under bwrap: installs from the host's local HTTP index through the proxy, and every probe is refused",
    { skip: bwrapSkip },
    async () => {
      assertContained(await attack("trust-bwrap-pip", "pip", "required", "bwrap"), caps.backend);
    },
  );

  it("uv under bwrap: the same", { skip: bwrapSkip || uvSkip }, async () => {
    assertContained(await attack("trust-bwrap-uv", "uv", "required", "bwrap"), caps.backend);
  });

  it(
    "pip under Landlock: installs through the proxy's one TCP port, and every probe is refused",
    { skip: landlockSkip },
    async () => {
      assertContained(await attack("trust-landlock-pip", "pip", "required", "landlock"), "landlock");
    },
  );

  it("uv under Landlock: the same", { skip: landlockSkip || uvSkip }, async () => {
    assertContained(await attack("trust-landlock-uv", "uv", "required", "landlock"), "landlock");
  });
});
