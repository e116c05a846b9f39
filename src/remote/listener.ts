// The cluster listener: a TLS server that takes a connection only with a one-time token the host handed out, and
// drops everything else (wrong or reused token, a plain TCP client, a slow one, a flood) without a cost that grows.

import { createServer, type Server, type TLSSocket } from "node:tls";
import type { Socket } from "node:net";
import { ExtensionClosedError } from "../errors.js";
import type { Logger } from "../logger.js";
import { dialEnv, newToken, readPreamble, tokenKey } from "./auth.js";
import { connectAddress } from "./listen-check.js";
import type { ResolvedListen } from "./options.js";
import { makeTlsIdentity } from "./tls-identity.js";

/** A connection the host expects: its token, the environment that carries it, and the connection once it came. */
export interface PendingConnection {
  /** The one-time token, hex (also in env.PYISOLATE_TOKEN). */
  readonly token: string;
  /** What the guest's environment must hold to dial back: PYISOLATE_CONNECT, PYISOLATE_PEER_SHA256, PYISOLATE_TOKEN. */
  readonly env: Record<string, string>;
  /** The authenticated connection (paused: the first frame may already be buffered in it). */
  readonly accepted: Promise<TLSSocket>;
  /** Forgets the token (a later connection with it is refused) and rejects `accepted` if it is still waiting. */
  cancel(reason?: Error): void;
}

export interface ListenerStats {
  /** Connections that have not authenticated yet. */
  preAuth: number;
  accepted: number;
  refused: number;
}

/** Refusals logged one by one before the log says only every 100th: a flood must not flood the log too. */
const LOGGED_REFUSALS = 10;

export class ClusterListener {
  readonly fingerprint: string;
  /** host:port as guests dial it. */
  readonly address: string;
  readonly port: number;
  private readonly server: Server;
  private readonly expected = new Map<
    string,
    { resolve: (socket: TLSSocket) => void; reject: (error: Error) => void }
  >();
  /** Connections not yet authenticated, by their peer's address and port (the same on the TCP and the TLS socket). */
  private readonly waiting = new Map<string, { socket: Socket; timer: NodeJS.Timeout }>();
  private readonly counts = { accepted: 0, refused: 0 };
  /** Authenticated connections still open: server.close() waits for every one, so close() ends those left over. */
  private readonly live = new Set<TLSSocket>();
  private closed = false;

  private constructor(
    server: Server,
    fingerprint: string,
    port: number,
    private readonly options: ResolvedListen,
    private readonly logger: Logger,
  ) {
    this.server = server;
    this.fingerprint = fingerprint;
    this.port = port;
    this.address = connectAddress(options.advertise, port);
  }

  /** Makes the TLS identity and binds; rejects when the address cannot be bound. */
  static async open(options: ResolvedListen, logger: Logger): Promise<ClusterListener> {
    const identity = makeTlsIdentity();
    const server = createServer({
      key: identity.key,
      cert: identity.cert,
      minVersion: "TLSv1.3",
      handshakeTimeout: options.authTimeoutMs,
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port, options.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const address = server.address();
    const port = typeof address === "object" && address !== null ? address.port : options.port;
    const listener = new ClusterListener(server, identity.fingerprint, port, options, logger);
    listener.serve();
    return listener;
  }

  get stats(): ListenerStats {
    return { preAuth: this.waiting.size, ...this.counts };
  }

  /** Files a fresh one-time token for `name`; the connection that presents it is `accepted`. */
  expect(name: string): PendingConnection {
    if (this.closed) throw new ExtensionClosedError("the cluster listener is closed");
    const token = newToken();
    const key = tokenKey(Buffer.from(token, "hex"));
    let settle!: { resolve: (socket: TLSSocket) => void; reject: (error: Error) => void };
    const accepted = new Promise<TLSSocket>((resolve, reject) => (settle = { resolve, reject }));
    accepted.catch(() => {}); // a cancelled slot nobody awaits is not an unhandled rejection
    this.expected.set(key, settle);
    return {
      token,
      accepted,
      env: dialEnv(this.address, this.fingerprint, token),
      cancel: (reason) => {
        if (this.expected.get(key) !== settle) return;
        this.expected.delete(key);
        settle.reject(reason ?? new ExtensionClosedError(`the connection of "${name}" is no longer expected`));
      },
    };
  }

  /** Stops listening, drops connections still authenticating and rejects every expected one. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const { socket } of this.waiting.values()) socket.destroy();
    for (const socket of this.live) socket.destroy();
    const error = new ExtensionClosedError("the cluster listener was closed");
    for (const settle of this.expected.values()) settle.reject(error);
    this.expected.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private serve(): void {
    // Counted from the TCP accept, before TLS: the handshake is the expensive part a flood would aim at.
    this.server.on("connection", (socket: Socket) => {
      if (this.waiting.size >= this.options.maxPendingConnections)
        return this.refuse(socket, "too many connections waiting to authenticate");
      const id = peerId(socket);
      const timer = setTimeout(
        () => this.refuse(socket, `no token within ${this.options.authTimeoutMs} ms`),
        this.options.authTimeoutMs,
      );
      timer.unref();
      this.waiting.set(id, { socket, timer });
      socket.once("close", () => this.settled(id, socket));
    });
    this.server.on("secureConnection", (tls: TLSSocket) => this.authenticate(tls));
    // A failed handshake (a plain TCP client, a wrong protocol) ends that socket only.
    this.server.on("tlsClientError", (_error, socket) => socket.destroy());
    this.server.on("error", (error) => this.logger.warn(`pyisolate cluster listener: ${error.message}`));
  }

  private authenticate(tls: TLSSocket): void {
    let received = Buffer.alloc(0);
    tls.on("error", () => tls.destroy());
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const verdict = readPreamble(received);
      if (verdict.kind === "more") return;
      tls.off("data", onData);
      tls.pause();
      if (verdict.kind === "bad-magic") return this.refuse(tls, "it did not start with the pyisolate preamble");
      const settle = this.expected.get(verdict.key);
      // Unknown, already used or cancelled: the same answer, a closed connection.
      if (settle === undefined) return this.refuse(tls, "its token is wrong or was used already");
      this.expected.delete(verdict.key);
      this.counts.accepted += 1;
      this.settled(peerId(tls));
      if (verdict.rest.length > 0) tls.unshift(verdict.rest);
      tls.removeAllListeners("error");
      // Frames are written whole: Nagle's wait for an ACK would only delay a small call's reply.
      tls.setNoDelay(true);
      this.live.add(tls);
      tls.once("close", () => this.live.delete(tls));
      settle.resolve(tls);
    };
    tls.on("data", onData);
  }

  /** The connection authenticated or closed: no longer waiting, its deadline gone. */
  private settled(id: string, socket?: Socket): void {
    const entry = this.waiting.get(id);
    if (entry === undefined || (socket !== undefined && entry.socket !== socket)) return;
    clearTimeout(entry.timer);
    this.waiting.delete(id);
  }

  private refuse(socket: Socket, why: string): void {
    this.counts.refused += 1;
    const n = this.counts.refused;
    if (n <= LOGGED_REFUSALS || n % 100 === 0) {
      this.logger.warn(
        `pyisolate cluster listener: refused a connection from ${socket.remoteAddress ?? "?"}: ${why} (${n} refused so far)`,
      );
    }
    socket.destroy();
  }
}

function peerId(socket: Socket): string {
  return `${socket.remoteAddress}|${socket.remotePort}`;
}
