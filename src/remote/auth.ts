// The one-time token a guest sends first on its TLS connection, and the environment that hands it over: pure.

import { createHash, randomBytes } from "node:crypto";

/** Sent before the token: a stray client (an HTTP probe, a port scanner) is told apart at its first bytes. */
export const AUTH_MAGIC = Buffer.from("PYI1", "ascii");
/** 256 random bits: the issue asks for at least 128. */
export const TOKEN_BYTES = 32;
/** What a guest sends before anything else: magic, then the raw token. Nothing more is read before it is checked. */
export const PREAMBLE_BYTES = AUTH_MAGIC.length + TOKEN_BYTES;

/** The variables a guest dials with (python/pyisolate/_guest/tcp_link.py reads and removes them at start). */
export const CONNECT_ENV = "PYISOLATE_CONNECT";
export const PEER_SHA256_ENV = "PYISOLATE_PEER_SHA256";
export const TOKEN_ENV = "PYISOLATE_TOKEN";
/** The token of a second connection, for the health heartbeat (present only when the load has `health`). */
export const HEARTBEAT_TOKEN_ENV = "PYISOLATE_HEARTBEAT_TOKEN";
export const TRANSPORT_ENV_NAMES = [CONNECT_ENV, PEER_SHA256_ENV, TOKEN_ENV, HEARTBEAT_TOKEN_ENV] as const;

/** A fresh token, hex-encoded (what the environment carries). */
export function newToken(): string {
  return randomBytes(TOKEN_BYTES).toString("hex");
}

/** The key a token is filed under: its SHA-256, so that the lookup's timing says nothing of the token itself. */
export function tokenKey(token: Uint8Array): string {
  return createHash("sha256").update(token).digest("hex");
}

/** The guest's environment for one connection. */
export function dialEnv(address: string, fingerprint: string, token: string): Record<string, string> {
  return { [CONNECT_ENV]: address, [PEER_SHA256_ENV]: fingerprint, [TOKEN_ENV]: token };
}

export type PreambleVerdict = { kind: "more" } | { kind: "bad-magic" } | { kind: "token"; key: string; rest: Buffer };

/** Pure: what the bytes received so far say. At most PREAMBLE_BYTES are looked at; the rest is the guest's first frame. */
export function readPreamble(received: Buffer): PreambleVerdict {
  const head = received.subarray(0, Math.min(received.length, AUTH_MAGIC.length));
  if (!head.equals(AUTH_MAGIC.subarray(0, head.length))) return { kind: "bad-magic" };
  if (received.length < PREAMBLE_BYTES) return { kind: "more" };
  return {
    kind: "token",
    key: tokenKey(received.subarray(AUTH_MAGIC.length, PREAMBLE_BYTES)),
    rest: received.subarray(PREAMBLE_BYTES),
  };
}
