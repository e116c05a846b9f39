// The host's TLS identity for the cluster listener: a fresh P-256 key and a self-signed certificate, made in memory
// at start and pinned by the guests through its SHA-256 fingerprint (no CA, no file on disk, no openssl CLI).

import { createHash, generateKeyPairSync, randomBytes, sign, X509Certificate } from "node:crypto";
import { bitString, explicit, objectId, sequence, set, time, unsignedInteger, utf8String } from "./der.js";

const OID_ECDSA_SHA256 = "1.2.840.10045.4.3.2";
const OID_COMMON_NAME = "2.5.4.3";
/** Long enough for any host run; the pin, not the date, is what guests check. */
const VALID_DAYS = 365;

export interface TlsIdentity {
  /** PEM private key (PKCS#8): stays in the host's memory. */
  key: string;
  /** PEM certificate. */
  cert: string;
  /** SHA-256 of the certificate's DER, lowercase hex: what a guest compares before it sends its token. */
  fingerprint: string;
}

/** Pure apart from its randomness: a new key pair and a self-signed certificate for `commonName`. */
export function makeTlsIdentity(commonName = "pyisolate host", now = new Date()): TlsIdentity {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const name = sequence(set(sequence(objectId(OID_COMMON_NAME), utf8String(commonName))));
  const algorithm = sequence(objectId(OID_ECDSA_SHA256));
  // A random positive serial of 16 bytes (RFC 5280 allows up to 20).
  const serial = randomBytes(16);
  serial[0] = serial[0]! & 0x7f;
  const tbs = sequence(
    explicit(0, unsignedInteger(Buffer.of(2))), // v3
    unsignedInteger(serial),
    algorithm,
    name,
    sequence(time(new Date(now.getTime() - 3600_000)), time(new Date(now.getTime() + VALID_DAYS * 86_400_000))),
    name,
    publicKey.export({ type: "spki", format: "der" }),
  );
  const signature = sign("sha256", tbs, privateKey); // DER ECDSA-Sig-Value, as X.509 wants it
  const der = sequence(tbs, algorithm, bitString(signature));
  const cert = `-----BEGIN CERTIFICATE-----\n${der.toString("base64").replace(/.{64}/g, "$&\n").replace(/\n?$/, "\n")}-----END CERTIFICATE-----\n`;
  // Parsed back once: a malformed encoding fails here, at start, not at a guest's handshake.
  const parsed = new X509Certificate(cert);
  if (!parsed.verify(publicKey)) throw new Error("the self-signed certificate does not verify against its own key");
  return {
    key: privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    cert,
    fingerprint: certFingerprint(der),
  };
}

/** SHA-256 of a certificate's DER bytes, lowercase hex (the pin the guest checks). */
export function certFingerprint(der: Uint8Array): string {
  return createHash("sha256").update(der).digest("hex");
}
