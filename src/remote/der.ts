// The few DER (ASN.1) encodings an X.509 certificate needs: node:crypto parses certificates but cannot make one.

/** One DER element: tag, length (short or long form), contents. */
function element(tag: number, contents: Buffer): Buffer {
  const n = contents.length;
  if (n < 0x80) return Buffer.concat([Buffer.of(tag, n), contents]);
  const bytes: number[] = [];
  for (let rest = n; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return Buffer.concat([Buffer.of(tag, 0x80 | bytes.length, ...bytes), contents]);
}

export const sequence = (...items: Buffer[]): Buffer => element(0x30, Buffer.concat(items));
export const set = (...items: Buffer[]): Buffer => element(0x31, Buffer.concat(items));
/** `[n] EXPLICIT`: a context-specific constructed wrapper. */
export const explicit = (n: number, inner: Buffer): Buffer => element(0xa0 | n, inner);
export const utf8String = (text: string): Buffer => element(0x0c, Buffer.from(text, "utf8"));
/** A BIT STRING of whole bytes (no unused bits): how a signature is carried. */
export const bitString = (bytes: Buffer): Buffer => element(0x03, Buffer.concat([Buffer.of(0), bytes]));

/** A non-negative INTEGER from its big-endian bytes (a leading 0 added when the top bit is set). */
export function unsignedInteger(bytes: Buffer): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const trimmed = bytes.subarray(start);
  return element(0x02, trimmed[0]! & 0x80 ? Buffer.concat([Buffer.of(0), trimmed]) : trimmed);
}

export function objectId(dotted: string): Buffer {
  const parts = dotted.split(".").map(Number);
  const out: number[] = [40 * parts[0]! + parts[1]!];
  for (const part of parts.slice(2)) {
    const group: number[] = [part & 0x7f];
    for (let rest = Math.floor(part / 128); rest > 0; rest = Math.floor(rest / 128))
      group.unshift(0x80 | (rest & 0x7f));
    out.push(...group);
  }
  return element(0x06, Buffer.from(out));
}

/** UTCTime (years 1950-2049) or GeneralizedTime, as RFC 5280 requires, to the second. */
export function time(date: Date): Buffer {
  const iso = date.toISOString().replace(/[-:T]/g, "").slice(0, 14) + "Z"; // YYYYMMDDHHMMSSZ
  const year = date.getUTCFullYear();
  return year >= 1950 && year < 2050
    ? element(0x17, Buffer.from(iso.slice(2), "ascii"))
    : element(0x18, Buffer.from(iso, "ascii"));
}
