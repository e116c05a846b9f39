// Test helpers for the RPC layer: in-memory and Unix-socket stream pairs, frame taps, peer pairs, gc().

import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Duplex } from "node:stream";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { FrameDecoder } from "../src/rpc/framing.js";
import { RpcPeer, type RpcPeerOptions } from "../src/rpc/peer.js";

/** Records the headers of every frame written in one direction, and lets a test await a given one. */
export class Tap {
  readonly headers: Record<string, unknown>[] = [];
  private waiters: { match: (h: Record<string, unknown>) => boolean; resolve: (h: Record<string, unknown>) => void }[] =
    [];
  private readonly decoder = new FrameDecoder((frame) => {
    this.headers.push(frame.header);
    this.waiters = this.waiters.filter((w) => {
      if (!w.match(frame.header)) return true;
      w.resolve(frame.header);
      return false;
    });
  });

  /** Set once the bytes stopped being valid frames (tests that write garbage on purpose). */
  broken: unknown;

  push(chunk: Uint8Array): void {
    if (this.broken !== undefined) return;
    try {
      this.decoder.push(Buffer.from(chunk));
    } catch (err) {
      this.broken = err;
    }
  }

  /** Resolves with the first header (already seen or still to come) that matches. */
  waitFor(match: (h: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
    const seen = this.headers.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.waiters.push({ match, resolve }));
  }

  kinds(): unknown[] {
    return this.headers.map((h) => h.k);
  }
}

/** Two in-memory Duplex streams wired to each other; each direction is tapped. */
export function duplexPair(): { a: Duplex; b: Duplex; aToB: Tap; bToA: Tap } {
  const aToB = new Tap();
  const bToA = new Tap();
  const make = (tap: Tap, other: () => Duplex): Duplex =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        tap.push(chunk);
        const peer = other();
        if (!peer.destroyed) peer.push(chunk);
        callback();
      },
      final(callback) {
        other().push(null);
        callback();
      },
      destroy(err, callback) {
        const peer = other();
        if (!peer.destroyed && !peer.readableEnded) peer.push(null);
        callback(err);
      },
    });
  const a: Duplex = make(aToB, () => b);
  const b: Duplex = make(bToA, () => a);
  return { a, b, aToB, bToA };
}

/** A connected pair of real Unix-domain sockets (what the host and guest use). */
export async function unixSocketPair(): Promise<{ a: Socket; b: Socket; cleanup: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), "pyisolate-rpc-"));
  const path = join(dir, "sock");
  const server = createServer();
  server.listen(path);
  await once(server, "listening");
  const accepted = once(server, "connection") as Promise<[Socket]>;
  const a = createConnection(path);
  await once(a, "connect");
  const [b] = await accepted;
  server.close();
  return { a, b, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface PeerPair {
  a: RpcPeer;
  b: RpcPeer;
  /** Frames a sent to b, and b to a. */
  aToB: Tap;
  bToA: Tap;
  streams: { a: Duplex; b: Duplex };
}

/** Two peers talking in memory. */
export function peerPair(a: RpcPeerOptions = {}, b: RpcPeerOptions = {}): PeerPair {
  const pair = duplexPair();
  return {
    a: new RpcPeer(pair.a, a),
    b: new RpcPeer(pair.b, b),
    aToB: pair.aToB,
    bToA: pair.bToA,
    streams: { a: pair.a, b: pair.b },
  };
}

/** Services by name, as an owner's resolveTarget would look them up. */
export function services(map: Record<string, object>): (target: string) => object | undefined {
  return (target) => (Object.hasOwn(map, target) ? map[target] : undefined);
}

setFlagsFromString("--expose-gc");
/** A full garbage collection, without needing node --expose-gc on the command line. */
export const gc = runInNewContext("gc") as () => void;

/** A promise and its settle functions (Promise.withResolvers is Node 22+). */
export function deferred<T = unknown>(): {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
} {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
