// The TCP transport's security with real sockets: who the listener refuses, what the guest refuses, what a
// sandboxed guest on TCP can still reach.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { connect as netConnect, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { connect as tlsConnect, createServer as tlsServer, type TLSSocket } from "node:tls";
import { join } from "node:path";
import type { ExtensionManager } from "../src/index.js";
import { AUTH_MAGIC } from "../src/remote/auth.js";
import type { ClusterListener } from "../src/remote/listener.js";
import { makeTlsIdentity } from "../src/remote/tls-identity.js";
import { RUNTIME_ROOT } from "../src/runtime-paths.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import { fixture, makeManager, waitFor } from "./helpers.js";
import { SANDBOX_MODES, unavailableMode } from "./sandbox-modes.js";

const listeners = () => process.getActiveResourcesInfo().filter((r) => r === "TCPServerWrap").length;

/** A TLS client to the listener that sends `bytes` and reports whether the server closed on it. */
function tlsClient(port: number, bytes: Buffer): Promise<{ socket: TLSSocket; closed: Promise<Buffer> }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
      socket.write(bytes);
      const got: Buffer[] = [];
      socket.on("data", (d: Buffer) => got.push(d));
      const closed = new Promise<Buffer>((done) => socket.once("close", () => done(Buffer.concat(got))));
      resolve({ socket, closed });
    });
    socket.on("error", () => {});
    socket.once("close", () => reject(new Error("closed before the handshake")));
  });
}

function rawClient(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: "127.0.0.1", port }, () => resolve(socket));
    socket.on("error", reject);
  });
}

describe("the cluster listener", () => {
  let manager: ExtensionManager;
  let listener: ClusterListener;

  before(async () => {
    manager = makeManager({
      cluster: { listen: { host: "127.0.0.1", port: 0, authTimeoutMs: 400, maxPendingConnections: 8 } },
    });
    listener = await manager.clusterListener();
  });
  after(() => manager.close());

  it("takes the right token once, and refuses a wrong one and the same one again", async () => {
    const slot = listener.expect("one");
    const refusedBefore = listener.stats.refused;
    const wrong = await tlsClient(listener.port, Buffer.concat([AUTH_MAGIC, randomBytes(32)]));
    assert.equal((await wrong.closed).length, 0, "a wrong token gets no byte back");
    assert.equal(listener.stats.refused, refusedBefore + 1);
    const right = await tlsClient(
      listener.port,
      Buffer.concat([AUTH_MAGIC, Buffer.from(slot.token, "hex"), Buffer.from("first frame")]),
    );
    const accepted = await slot.accepted;
    accepted.resume();
    const first = await new Promise<Buffer>((resolve) => accepted.once("data", resolve));
    assert.equal(first.toString(), "first frame", "bytes after the token reach the connection's owner intact");
    const again = await tlsClient(listener.port, Buffer.concat([AUTH_MAGIC, Buffer.from(slot.token, "hex")]));
    await again.closed;
    assert.equal(listener.stats.refused, refusedBefore + 2, "a used token is refused");
    right.socket.destroy();
    accepted.destroy();
  });

  it("gives a plain TCP client nothing, and a client that sends junk is closed at its first bytes", async () => {
    const plain = await rawClient(listener.port);
    const got: Buffer[] = [];
    plain.on("data", (d: Buffer) => got.push(d));
    plain.write("GET / HTTP/1.0\r\n\r\n");
    await new Promise((resolve) => plain.once("close", resolve));
    assert.ok(!Buffer.concat(got).includes("HTTP"), "no application answer");
    const junk = await tlsClient(listener.port, randomBytes(1 << 20));
    await junk.closed;
  });

  it("drops a client that never authenticates after authTimeoutMs", async () => {
    const idle = await rawClient(listener.port);
    const closed = new Promise((resolve) => idle.once("close", resolve));
    await closed; // no TLS, no token: dropped on the deadline (400 ms here)
    const silent = await tlsClient(listener.port, Buffer.alloc(0));
    await silent.closed;
  });

  it("bounds a flood of unauthenticated connections and serves a real one once it has passed", async () => {
    const flood = await Promise.all(Array.from({ length: 40 }, () => rawClient(listener.port).catch(() => undefined)));
    assert.ok(listener.stats.preAuth <= 8, `at most maxPendingConnections wait (${listener.stats.preAuth})`);
    await waitFor(() => listener.stats.preAuth === 0, 5000, "the flood to be dropped");
    const slot = listener.expect("after-flood");
    const client = await tlsClient(listener.port, Buffer.concat([AUTH_MAGIC, Buffer.from(slot.token, "hex")]));
    const accepted = await slot.accepted;
    accepted.destroy();
    client.socket.destroy();
    for (const socket of flood) socket?.destroy();
  });
});

describe("the listener's existence", () => {
  it("is opened only when asked and closed by manager.close()", async () => {
    await new Promise((resolve) => setTimeout(resolve, 50)); // a closed server's handle goes a turn after close()
    const before = listeners();
    const manager = makeManager();
    const unix = await manager.load({
      name: "tcp_sec_unix",
      modulePath: fixture("echo_ext"),
      sandbox: { mode: "disabled" },
    });
    assert.equal(await unix.call("echo", [1]), 1);
    assert.equal(listeners(), before, "a Unix-transport load opens no listener");
    await manager.load({
      name: "tcp_sec_tcp",
      modulePath: fixture("echo_ext"),
      sandbox: { mode: "disabled" },
      transport: "tcp",
    });
    assert.equal(listeners(), before + 1);
    const port = (await manager.clusterListener()).port;
    await manager.close();
    await waitFor(() => listeners() === before, 2000, "the listener's handle to go");
    await assert.rejects(rawClient(port), /ECONNREFUSED/);
  });
});

describe("manager.close() with a connection nobody took", () => {
  it("ends the authenticated connection instead of waiting on it", { timeout: 10_000 }, async () => {
    const manager = makeManager();
    const listener = await manager.clusterListener();
    const slot = listener.expect("orphan");
    const client = await tlsClient(listener.port, Buffer.concat([AUTH_MAGIC, Buffer.from(slot.token, "hex")]));
    await slot.accepted;
    await manager.close(); // the test's own timeout is the bound: server.close() alone would wait for this socket
    await client.closed;
  });
});

describe("the guest's side", () => {
  it("refuses a server whose certificate is not the pinned one, and sends it nothing", async () => {
    const impostor = makeTlsIdentity("impostor");
    const received: Buffer[] = [];
    const server = tlsServer({ key: impostor.key, cert: impostor.cert }, (socket) =>
      socket.on("data", (d: Buffer) => received.push(d)),
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const guest = spawn(
        process.env.PYTHON ?? "python3",
        ["-I", "-S", "-u", join(RUNTIME_ROOT, "pyisolate", "_guest", "bootstrap.py")],
        {
          env: {
            PATH: process.env.PATH,
            PYISOLATE_CONNECT: `127.0.0.1:${port}`,
            PYISOLATE_PEER_SHA256: makeTlsIdentity().fingerprint,
            PYISOLATE_TOKEN: randomBytes(32).toString("hex"),
          },
          stdio: ["ignore", "ignore", "pipe"],
        },
      );
      let stderr = "";
      guest.stderr!.on("data", (d: Buffer) => (stderr += d));
      const code = await new Promise<number | null>((resolve) => guest.once("close", resolve));
      assert.equal(code, 8, `exit 8, the host is not who it should be (stderr: ${stderr})`);
      assert.match(stderr, /not the host's: the token was not sent/);
      assert.equal(Buffer.concat(received).length, 0, "not one byte of application data reached the impostor");
    } finally {
      server.close();
    }
  });
});

describe("a sandboxed guest on TCP", async () => {
  const caps = await detectSandbox();
  const manager = makeManager();
  after(() => manager.close());
  for (const mode of SANDBOX_MODES) {
    it(
      `under ${mode.label}: has no Unix channel and no dial variables, and ${mode.tag === "none" ? "can" : "cannot"} open a new connection`,
      { skip: unavailableMode(caps, mode.sandbox) },
      async () => {
        const ext = await manager.load({
          name: `tcp_probe_${mode.tag}`,
          modulePath: fixture("tcp_probe"),
          sandbox: mode.sandbox,
          transport: "tcp",
        });
        assert.equal(await ext.call("unix_channel"), false);
        assert.deepEqual(await ext.call("token_env"), []);
        const port = (await manager.clusterListener()).port;
        const dialled = (await ext.call("dial", ["127.0.0.1", port])) as string;
        if (mode.tag === "none") assert.equal(dialled, "connected");
        else assert.match(dialled, /^PermissionError: .*no network/);
        await ext.stop();
      },
    );
  }
});
