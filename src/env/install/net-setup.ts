// Host side of an install's network when the load says network: false: start the index proxy, and say how the install reaches it.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { RUNTIME_ROOT } from "../../runtime-paths.js";
import type { IndexOptions } from "../index-options.js";
import { startIndexProxy, type IndexProxy } from "../index-proxy.js";
import type { InstallerConfig } from "./config.js";
import { planInstallNetwork, type InstallNetwork } from "./network.js";
import { extensionSources } from "./sources.js";
import type { InstallSandboxOptions } from "../types.js";

/** Inside a bwrap sandbox: the forwarder's port on the sandbox's own loopback, and where the proxy's socket and the forwarder appear. */
export const INSIDE_PROXY_PORT = 3128;
export const INSIDE_PROXY_DIR = "/.pyisolate-net";
export const INSIDE_PROXY_SOCKET = `${INSIDE_PROXY_DIR}/proxy.sock`;
export const INSIDE_FORWARDER = `${INSIDE_PROXY_DIR}/install_net.py`;
/** The forwarder on the host (bound read-only into the sandbox). */
export const FORWARDER_SCRIPT = path.join(RUNTIME_ROOT, "pyisolate", "_guest", "install_net.py");

/** Variables that would route around the proxy, or name the host's own proxy (unreachable from an empty network). */
const PROXY_VARS = /^(http_proxy|https_proxy|all_proxy|no_proxy|PIP_PROXY|UV_NO_PROXY)$/i;

/** Pure: the install's environment with every proxy setting pointing at `url` (pip: PIP_PROXY too, over its config file's). */
export function proxyEnv(env: NodeJS.ProcessEnv, url: string): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (!PROXY_VARS.test(k)) out[k] = v;
  for (const k of ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy", "PIP_PROXY"])
    out[k] = url;
  return out;
}

/** A started network for one install: for bwrap the proxy's socket (bind it in), for Landlock its TCP port. */
export interface InstallNet {
  network: InstallNetwork;
  proxy: IndexProxy | undefined;
  /** The proxy's Unix socket on the host (bwrap only). */
  socketPath: string | undefined;
  close(): Promise<void>;
}

/**
 * Start what `network` needs: nothing for "host" and "none"; for "proxy" the index proxy on a Unix socket in
 * a private folder (bwrap) or on 127.0.0.1 (Landlock). `log` hears every refusal.
 */
export async function startInstallNet(
  network: InstallNetwork,
  kind: "bwrap" | "landlock",
  log: (line: string) => void,
): Promise<InstallNet> {
  if (network.mode !== "proxy") return { network, proxy: undefined, socketPath: undefined, close: async () => {} };
  if (kind === "landlock") {
    const proxy = await startIndexProxy(network.allow, { tcp: true }, log);
    return { network, proxy, socketPath: undefined, close: () => proxy.close() };
  }
  const dir = await mkdtemp(path.join(tmpdir(), "pyisolate-install-net-"));
  const socketPath = path.join(dir, "proxy.sock");
  const proxy = await startIndexProxy(network.allow, { socketPath }, log).catch(async (e: unknown) => {
    await rm(dir, { recursive: true, force: true });
    throw e;
  });
  return {
    network,
    proxy,
    socketPath,
    close: async () => {
      await proxy.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Pure: the bwrap binds for the forwarder and the proxy's socket (after the sandbox's own tmpfs root). */
export function forwarderBinds(socketPath: string): string[] {
  return ["--ro-bind", FORWARDER_SCRIPT, INSIDE_FORWARDER, "--bind", socketPath, INSIDE_PROXY_SOCKET];
}

/** Pure: the installer's argv behind the forwarder, which `python` (the host's interpreter, `-I -S`) runs first. */
export function behindForwarder(python: string, argv: readonly string[]): string[] {
  return [
    python,
    "-I",
    "-S",
    INSIDE_FORWARDER,
    "--port",
    String(INSIDE_PROXY_PORT),
    "--socket",
    INSIDE_PROXY_SOCKET,
    "--",
    ...argv,
  ];
}

/** Pure: the install's network from the load's `network`, the host's own index URLs and the spec's (split by who named them). */
export function installNetworkFor(
  req: { options: Pick<InstallSandboxOptions, "network" | "trustedIndex">; index: IndexOptions },
  config: Pick<InstallerConfig, "urls">,
): InstallNetwork {
  const fromExtension = new Set(extensionSources(req.index, req.options.trustedIndex).map((s) => s.value));
  const specUrls = [req.index.indexUrl ?? "", ...req.index.extraIndexUrls, ...req.index.findLinks].filter((u) =>
    /^https?:\/\//i.test(u),
  );
  return planInstallNetwork({
    network: req.options.network ?? true,
    hostUrls: [...config.urls, ...specUrls.filter((u) => !fromExtension.has(u))],
    extensionUrls: specUrls.filter((u) => fromExtension.has(u)),
    defaultIndex: !req.index.indexUrl,
  });
}

/** Pure: the install's network in words, for the progress line. */
export function describeNet(net: InstallNet): string {
  if (net.network.mode === "host") return "the host's network";
  if (net.network.mode === "none") return `no network (${net.network.why})`;
  const { trusted, publicOnly } = net.network.allow;
  return `only the index proxy, to ${[...trusted, ...publicOnly.map((h) => `${h} (public addresses only)`)].join(", ")}`;
}
