// Pure: which network one install gets (the host's, none, or only the index proxy) and what the proxy may reach.

import { BlockList, isIP } from "node:net";

/** PyPI, the installers' default index: its pages and its files. */
export const DEFAULT_INDEX_HOSTS = ["pypi.org:443", "files.pythonhosted.org:443"];

/** What the index proxy lets through: exact "host:port" pairs, lower-case, IPv6 hosts in brackets. */
export interface ProxyAllowList {
  /** Named by the host (code options, its pip/uv config, PIP_* / UV_*): reachable at whatever address they have. */
  trusted: string[];
  /** Named by the extension's yaml, or the default index: reachable only at public addresses. */
  publicOnly: string[];
}

export type InstallNetwork =
  { mode: "host"; why: string } | { mode: "none"; why: string } | { mode: "proxy"; allow: ProxyAllowList };

/** Pure: "host:port" of an http(s) URL (default ports filled in), or undefined for anything else. */
export function hostPortOf(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") return undefined;
  const port = u.port || (u.protocol === "https:" ? "443" : "80");
  return `${u.hostname.toLowerCase()}:${port}`;
}

export interface NetworkRequest {
  /** The load's `sandbox.network` (true: the install shares the host's network, as before). */
  network: boolean;
  /** http(s) index URLs the host named (code options, its installer config and variables). */
  hostUrls: readonly string[];
  /** http(s) index URLs only the extension named (its yaml). */
  extensionUrls: readonly string[];
  /** Whether the installers' default index (PyPI) stays in use: no index URL replaces it. */
  defaultIndex: boolean;
}

/**
 * Pure: the install's network. `network: true` keeps the host's. Otherwise an install whose every source is
 * local gets none at all, and one that needs an index gets only the proxy, which reaches the hosts named.
 */
export function planInstallNetwork(req: NetworkRequest): InstallNetwork {
  if (req.network) return { mode: "host", why: "sandbox.network is true" };
  const trusted = [...new Set(req.hostUrls.map(hostPortOf).filter((h): h is string => h !== undefined))];
  const publicOnly = [
    ...new Set(
      [...req.extensionUrls.map(hostPortOf), ...(req.defaultIndex ? DEFAULT_INDEX_HOSTS : [])].filter(
        (h): h is string => h !== undefined,
      ),
    ),
  ].filter((h) => !trusted.includes(h));
  if (trusted.length === 0 && publicOnly.length === 0) return { mode: "none", why: "every package source is local" };
  return { mode: "proxy", allow: { trusted, publicOnly } };
}

/** Addresses no index named by an extension may have: this host, its LAN, link-local, multicast, reserved. */
function privateRanges(): BlockList {
  const list = new BlockList();
  const v4: Array<[string, number]> = [
    ["0.0.0.0", 8],
    ["10.0.0.0", 8],
    ["100.64.0.0", 10],
    ["127.0.0.0", 8],
    ["169.254.0.0", 16],
    ["172.16.0.0", 12],
    ["192.0.0.0", 24],
    ["192.168.0.0", 16],
    ["198.18.0.0", 15],
    ["224.0.0.0", 4],
    ["240.0.0.0", 4],
  ];
  for (const [net, bits] of v4) list.addSubnet(net, bits, "ipv4");
  const v6: Array<[string, number]> = [
    ["::", 128],
    ["::1", 128],
    ["fc00::", 7],
    ["fe80::", 10],
    ["ff00::", 8],
    ["64:ff9b::", 96],
    ["2002::", 16],
  ];
  for (const [net, bits] of v6) list.addSubnet(net, bits, "ipv6");
  return list;
}

/** Pure: whether an IP address is loopback, private, link-local, multicast or reserved (IPv4-mapped IPv6 unwrapped). */
export function isPrivateAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const ip = mapped ? mapped[1]! : address;
  const family = isIP(ip);
  if (family === 0) return true;
  return privateRanges().check(ip, family === 4 ? "ipv4" : "ipv6");
}

/** Pure: why the proxy must refuse "host:port" at `address`, or undefined when it may connect. */
export function refusal(allow: ProxyAllowList, hostPort: string, address: string): string | undefined {
  if (allow.trusted.includes(hostPort)) return undefined;
  if (!allow.publicOnly.includes(hostPort)) return "not a configured package index";
  if (isPrivateAddress(address))
    return `${address} is a loopback, private or reserved address, and the host did not configure this index`;
  return undefined;
}
