// The install's only way out when the load says network: false: an HTTP proxy (CONNECT and plain GET) to the configured indexes alone.

import { lookup } from "node:dns/promises";
import { createServer, request, type IncomingMessage, type ServerResponse } from "node:http";
import { connect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { refusal, type ProxyAllowList } from "./install/network.js";

/** Where the proxy listens: a Unix socket (bound into a bwrap sandbox) or TCP on 127.0.0.1 (Landlock allows one port). */
export type ProxyListen = { socketPath: string } | { tcp: true };

export interface IndexProxy {
  /** The TCP port (for `{ tcp: true }`), else undefined. */
  port: number | undefined;
  socketPath: string | undefined;
  /** The first refusals (at most 100), as logged: "CONNECT host:port: why". */
  refused: string[];
  close(): Promise<void>;
}

/** One install runs a few dozen connections at most; idle ones are cut after this. */
const MAX_CONNECTIONS = 64;
const IDLE_MS = 120_000;
/** Refusals kept and logged: build code that hammers the proxy must not fill the host's memory or its log. */
const MAX_LOGGED = 20;
const MAX_KEPT = 100;

/** "host:port" of a CONNECT target or a URL's authority; the key the allow list uses. */
function splitTarget(authority: string): { host: string; port: number; key: string } | undefined {
  const m = /^(\[[0-9a-f:.]+\]|[^:/\s[\]]+):(\d{1,5})$/i.exec(authority);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) return undefined;
  const host = m[1]!.toLowerCase();
  return { host: host.replace(/^\[|\]$/g, ""), port: Number(m[2]), key: `${host}:${Number(m[2])}` };
}

/** Resolve once and check every address: the connection then goes to the checked address, so a rebinding name cannot slip past. */
async function vet(
  allow: ProxyAllowList,
  target: { host: string; key: string },
): Promise<{ address: string } | { why: string }> {
  const first = refusal(allow, target.key, "0.0.0.0");
  if (first === "not a configured package index") return { why: first };
  let addresses: string[];
  try {
    addresses = (await lookup(target.host, { all: true, verbatim: true })).map((a) => a.address);
  } catch (e) {
    return { why: `cannot resolve ${target.host}: ${(e as Error).message}` };
  }
  for (const address of addresses) {
    const why = refusal(allow, target.key, address);
    if (why) return { why };
  }
  return addresses[0] ? { address: addresses[0] } : { why: `no address for ${target.host}` };
}

/** Start the proxy; `log` hears every refusal (the caller shows them as install progress). */
export async function startIndexProxy(
  allow: ProxyAllowList,
  listen: ProxyListen,
  log: (line: string) => void,
): Promise<IndexProxy> {
  const refused: string[] = [];
  let count = 0;
  const refuse = (what: string, why: string): void => {
    const line = `${what}: ${why}`;
    count++;
    if (refused.length < MAX_KEPT) refused.push(line);
    if (count <= MAX_LOGGED) log(line);
    if (count === MAX_LOGGED + 1) log(`more than ${MAX_LOGGED} requests refused; further refusals are not shown`);
  };
  const open = new Set<Duplex>();
  const track = (s: Duplex): void => {
    open.add(s);
    s.on("close", () => open.delete(s));
  };

  const server = createServer({ requestTimeout: IDLE_MS, headersTimeout: 30_000, maxHeaderSize: 16_384 });
  server.maxConnections = MAX_CONNECTIONS;
  server.on("connection", (s: Socket) => {
    track(s);
    s.setTimeout(IDLE_MS, () => s.destroy());
  });

  server.on("connect", (req: IncomingMessage, client: Duplex, head: Buffer) => {
    client.on("error", () => client.destroy());
    const target = splitTarget(req.url ?? "");
    if (!target) {
      refuse(`CONNECT ${req.url}`, "not a host:port");
      client.end("HTTP/1.1 400 Bad Request\r\n\r\n");
      return;
    }
    void vet(allow, target)
      .then((v) => {
        if ("why" in v) {
          refuse(`CONNECT ${target.key}`, v.why);
          client.end("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
          return;
        }
        const upstream = connect({ host: v.address, port: target.port });
        track(upstream);
        upstream.setTimeout(IDLE_MS, () => upstream.destroy());
        upstream.on("error", () => {
          client.end("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
          client.destroy();
        });
        upstream.on("connect", () => {
          client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
          if (head.length) upstream.write(head);
          upstream.pipe(client);
          client.pipe(upstream);
        });
        client.on("close", () => upstream.destroy());
      })
      .catch(() => client.destroy());
  });

  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    // A plain-HTTP index (a local one the host configured): the client sends the absolute URL.
    let url: URL | undefined;
    try {
      url = new URL(req.url ?? "");
    } catch {
      url = undefined;
    }
    const target =
      url?.protocol === "http:"
        ? splitTarget(`${url.hostname.includes(":") ? `[${url.hostname}]` : url.hostname}:${url.port || 80}`)
        : undefined;
    if (!url || !target) {
      refuse(`${req.method} ${req.url}`, "not an absolute http:// URL");
      res.writeHead(400).end();
      return;
    }
    void vet(allow, target)
      .then((v) => {
        if ("why" in v) {
          refuse(`${req.method} ${url.href}`, v.why);
          res.writeHead(403).end();
          return;
        }
        const headers = { ...req.headers };
        for (const h of Object.keys(headers)) if (h.startsWith("proxy-")) delete headers[h];
        const up = request(
          {
            host: v.address,
            port: target.port,
            method: req.method,
            path: `${url.pathname}${url.search}`,
            headers,
            setHost: false,
          },
          (r) => {
            r.on("error", () => res.destroy());
            res.writeHead(r.statusCode ?? 502, r.headers);
            r.pipe(res);
          },
        );
        up.setTimeout(IDLE_MS, () => up.destroy());
        up.on("error", () => (res.headersSent ? res.destroy() : res.writeHead(502).end()));
        req.on("error", () => up.destroy());
        res.on("error", () => up.destroy());
        req.pipe(up);
      })
      .catch(() => res.destroy());
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    if ("socketPath" in listen) server.listen(listen.socketPath, resolve);
    else server.listen(0, "127.0.0.1", resolve);
  });
  const address = server.address();
  return {
    port: typeof address === "object" && address ? address.port : undefined,
    socketPath: "socketPath" in listen ? listen.socketPath : undefined,
    refused,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
