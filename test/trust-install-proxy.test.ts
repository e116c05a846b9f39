// The index proxy and the install-network policy: which hosts an install may reach, checked on a real proxy with real sockets.

import assert from "node:assert/strict";
import { createServer as createHttpServer, type Server } from "node:http";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import { startIndexProxy, type IndexProxy } from "../src/env/index-proxy.js";
import { proxyEnv } from "../src/env/install/net-setup.js";
import {
  DEFAULT_INDEX_HOSTS,
  hostPortOf,
  isPrivateAddress,
  planInstallNetwork,
  refusal,
} from "../src/env/install/network.js";
import { extensionSources, localPathOf } from "../src/env/install/sources.js";
import { buildInstallLandlockRules, encodeInstallLandlockRules } from "../src/env/install/landlock-rules.js";

describe("install network policy (pure)", () => {
  it("a load with network: true keeps the host's network; without it an all-local install gets none", () => {
    assert.equal(
      planInstallNetwork({ network: true, hostUrls: [], extensionUrls: ["https://x.org/simple"], defaultIndex: true })
        .mode,
      "host",
    );
    assert.equal(
      planInstallNetwork({ network: false, hostUrls: [], extensionUrls: [], defaultIndex: false }).mode,
      "none",
    );
  });

  it("an install that needs an index gets only the proxy: host URLs trusted, the extension's and PyPI public-only", () => {
    const plan = planInstallNetwork({
      network: false,
      hostUrls: ["http://127.0.0.1:8080/simple/", "https://pypi.org/simple"],
      extensionUrls: ["https://Mirror.example/simple", "http://10.0.0.5/simple"],
      defaultIndex: true,
    });
    assert.equal(plan.mode, "proxy");
    if (plan.mode !== "proxy") return;
    assert.deepEqual(plan.allow.trusted, ["127.0.0.1:8080", "pypi.org:443"]);
    assert.deepEqual(plan.allow.publicOnly, ["mirror.example:443", "10.0.0.5:80", "files.pythonhosted.org:443"]);
    assert.deepEqual(DEFAULT_INDEX_HOSTS, ["pypi.org:443", "files.pythonhosted.org:443"]);
  });

  it("loopback, private, link-local, mapped and reserved addresses count as private; public ones do not", () => {
    for (const a of [
      "127.0.0.1",
      "10.1.2.3",
      "172.20.0.1",
      "192.168.1.1",
      "169.254.169.254",
      "100.64.0.1",
      "0.0.0.0",
      "::1",
      "::",
      "fe80::1",
      "fd00::1",
      "::ffff:127.0.0.1",
      "224.0.0.1",
      "not-an-ip",
    ])
      assert.ok(isPrivateAddress(a), a);
    for (const a of ["151.101.0.223", "8.8.8.8", "2a04:4e42::223", "::ffff:8.8.8.8"])
      assert.ok(!isPrivateAddress(a), a);
  });

  it("the proxy refuses what no one configured, and a public-only host at a private address; a host-configured local index passes", () => {
    const allow = { trusted: ["127.0.0.1:8080"], publicOnly: ["pypi.org:443"] };
    assert.equal(refusal(allow, "127.0.0.1:8080", "127.0.0.1"), undefined);
    assert.equal(refusal(allow, "127.0.0.1:6379", "127.0.0.1"), "not a configured package index");
    assert.match(refusal(allow, "pypi.org:443", "127.0.0.1") ?? "", /loopback, private or reserved/);
    assert.equal(refusal(allow, "pypi.org:443", "151.101.0.223"), undefined);
    assert.equal(refusal(allow, "pypi.org:80", "151.101.0.223"), "not a configured package index");
  });

  it("sources the host's code did not name are the extension's; their local paths are what the install would read", () => {
    const index = {
      indexUrl: "https://host/simple",
      extraIndexUrls: ["https://ext/simple"],
      findLinks: ["/srv/wheels", "file:///etc/passwd"],
    };
    const trusted = { indexUrl: "https://host/simple", extraIndexUrls: [], findLinks: ["/srv/wheels"] };
    assert.deepEqual(extensionSources(index, trusted), [
      { key: "extraIndexUrls", value: "https://ext/simple" },
      { key: "findLinks", value: "file:///etc/passwd" },
    ]);
    assert.deepEqual(extensionSources(index, undefined), [], "a direct ensureEnvironment call is all host code");
    assert.equal(localPathOf("file:///etc/passwd"), "/etc/passwd");
    assert.equal(localPathOf("https://x/simple"), undefined);
    assert.equal(hostPortOf("ftp://x/"), undefined);
    assert.equal(hostPortOf("http://[::1]:81/simple"), "[::1]:81");
  });

  it("the install's proxy settings replace the host's, and NO_PROXY cannot route around the proxy", () => {
    const env = proxyEnv(
      { NO_PROXY: "*", no_proxy: "127.0.0.1", HTTPS_PROXY: "http://corp:3128", PIP_PROXY: "x", PATH: "/bin" },
      "http://127.0.0.1:3128",
    );
    assert.equal(env.NO_PROXY, undefined);
    assert.equal(env.no_proxy, undefined);
    for (const k of ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "https_proxy", "PIP_PROXY"])
      assert.equal(env[k], "http://127.0.0.1:3128", k);
    assert.equal(env.PATH, "/bin");
  });

  it("Landlock install rules carry the proxy port only with network: false", () => {
    const p = {
      network: false,
      buildDir: "/b",
      cacheDir: "/c",
      home: "/h",
      tmp: "/t",
      readonlyPaths: [],
      proxyPort: 4242,
    };
    assert.equal(JSON.parse(encodeInstallLandlockRules(buildInstallLandlockRules(p))).proxy_port, 4242);
    assert.equal(
      JSON.parse(encodeInstallLandlockRules(buildInstallLandlockRules({ ...p, proxyPort: undefined }))).proxy_port,
      undefined,
    );
    assert.throws(() => buildInstallLandlockRules({ ...p, network: true }), { name: "ConfigError" });
    assert.throws(() => buildInstallLandlockRules({ ...p, proxyPort: 70000 }), { name: "ConfigError" });
  });
});

/** Send raw bytes to the proxy and read the first reply line. */
function ask(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1", () => s.write(text));
    let got = "";
    s.on("data", (d) => {
      got += d.toString();
      if (got.includes("\r\n")) {
        s.destroy();
        resolve(got.split("\r\n")[0]!);
      }
    });
    s.on("error", reject);
    s.on("close", () => resolve(got.split("\r\n")[0]!));
  });
}

describe("index proxy (real sockets)", () => {
  let index: Server;
  let service: Server;
  let indexPort: number;
  let servicePort: number;
  let proxy: IndexProxy;
  const logged: string[] = [];
  let serviceHits = 0;

  before(async () => {
    index = createHttpServer((_q, r) => r.end("index page"));
    service = createHttpServer((_q, r) => {
      serviceHits++;
      r.end("host secret");
    });
    await new Promise<void>((r) => index.listen(0, "127.0.0.1", r));
    await new Promise<void>((r) => service.listen(0, "127.0.0.1", r));
    indexPort = (index.address() as { port: number }).port;
    servicePort = (service.address() as { port: number }).port;
    // "localhost" stands for a public-looking name that resolves to the host's loopback (DNS rebinding).
    proxy = await startIndexProxy(
      { trusted: [`127.0.0.1:${indexPort}`], publicOnly: [`localhost:${servicePort}`] },
      { tcp: true },
      (l) => logged.push(l),
    );
  });
  after(async () => {
    await proxy.close();
    index.close();
    service.close();
  });

  it("control: the host's service answers anyone who connects directly", async () => {
    assert.equal(await ask(servicePort, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "HTTP/1.1 200 OK");
    serviceHits = 0;
  });

  it("tunnels to a host-configured local index, and forwards a plain GET to it", async () => {
    assert.equal(
      await ask(proxy.port!, `CONNECT 127.0.0.1:${indexPort} HTTP/1.1\r\n\r\n`),
      "HTTP/1.1 200 Connection Established",
    );
    assert.equal(
      await ask(proxy.port!, `GET http://127.0.0.1:${indexPort}/simple/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`),
      "HTTP/1.1 200 OK",
    );
  });

  it("refuses, and logs, a tunnel or a GET to a host port no one configured", async () => {
    assert.equal(await ask(proxy.port!, `CONNECT 127.0.0.1:${servicePort} HTTP/1.1\r\n\r\n`), "HTTP/1.1 403 Forbidden");
    assert.equal(
      await ask(proxy.port!, `GET http://127.0.0.1:${servicePort}/ HTTP/1.1\r\nHost: x\r\n\r\n`),
      "HTTP/1.1 403 Forbidden",
    );
    assert.ok(
      logged.some((l) => l.startsWith(`CONNECT 127.0.0.1:${servicePort}: not a configured package index`)),
      logged.join("\n"),
    );
    assert.equal(serviceHits, 0);
  });

  it("refuses an extension-named host that resolves to a loopback address", async () => {
    assert.equal(await ask(proxy.port!, `CONNECT localhost:${servicePort} HTTP/1.1\r\n\r\n`), "HTTP/1.1 403 Forbidden");
    assert.ok(
      logged.some((l) => l.includes(`localhost:${servicePort}`) && /loopback, private or reserved/.test(l)),
      logged.join("\n"),
    );
    assert.equal(serviceHits, 0);
  });

  it("answers malformed requests with 400 and keeps serving", async () => {
    assert.equal(await ask(proxy.port!, "CONNECT nonsense HTTP/1.1\r\n\r\n"), "HTTP/1.1 400 Bad Request");
    assert.equal(await ask(proxy.port!, "GET /relative HTTP/1.1\r\nHost: x\r\n\r\n"), "HTTP/1.1 400 Bad Request");
    assert.equal(
      await ask(proxy.port!, `CONNECT 127.0.0.1:${indexPort} HTTP/1.1\r\n\r\n`),
      "HTTP/1.1 200 Connection Established",
    );
  });

  it("a flood of refused requests and clients that hang up mid-request cost a bounded log, and the proxy keeps serving", async () => {
    const lines: string[] = [];
    const flood = await startIndexProxy({ trusted: [`127.0.0.1:${indexPort}`], publicOnly: [] }, { tcp: true }, (l) =>
      lines.push(l),
    );
    try {
      for (let i = 0; i < 300; i++) await ask(flood.port!, `CONNECT 127.0.0.1:${servicePort} HTTP/1.1\r\n\r\n`);
      for (let i = 0; i < 20; i++) {
        const s = connect(flood.port!, "127.0.0.1", () =>
          s.end(`GET http://127.0.0.1:${indexPort}/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\npartial`),
        );
        s.on("error", () => {});
      }
      assert.equal(lines.length, 21, "20 refusals and one line saying that more were not shown");
      assert.equal(flood.refused.length, 100);
      assert.equal(
        await ask(flood.port!, `CONNECT 127.0.0.1:${indexPort} HTTP/1.1\r\n\r\n`),
        "HTTP/1.1 200 Connection Established",
      );
      assert.equal(serviceHits, 0);
    } finally {
      await flood.close();
    }
  });
});
