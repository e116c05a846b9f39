// Frames on the byte stream: u32 frame length | u32 header length | JSON header | attachments.

import { ProtocolError } from "../errors.js";
import { DEFAULT_LIMITS, MAX_HEADER_DEPTH, nestsDeeperThan, overLimit, type ProtocolLimits } from "./limits.js";

/** Largest frame length the u32 length field can carry. */
const MAX_U32 = 0xffff_ffff;
/** Attachments up to this total size are copied into the header buffer: one write, one chunk. */
const COPY_ATTACHMENTS_BELOW = 16 * 1024;

/** A decoded frame: the parsed JSON header and views over the attachment bytes (no copy). */
export interface Frame {
  header: Record<string, unknown>;
  attachments: Uint8Array[];
  /** The frame's length on the wire, prefix excluded, where a decoder read it (what an event costs the flood gate). */
  size?: number;
}

/**
 * Encodes one frame. When there are attachments, `header.a` is set to their lengths (the header object is
 * mutated, so pass a fresh one). Returns the chunks to write in order: a single Buffer for small frames;
 * large attachments are passed through without a copy.
 */
export function encodeFrame(header: object, attachments: readonly Uint8Array[] = []): Buffer[] {
  if (attachments.length === 0) return encodeFrameText(JSON.stringify(header), attachments, 0);
  const { lengths, total } = attachmentLengths(attachments);
  (header as { a?: number[] }).a = lengths;
  return encodeFrameText(JSON.stringify(header), attachments, total);
}

/** The byte length of each attachment (a header's `a`) and their sum. */
export function attachmentLengths(attachments: readonly Uint8Array[]): { lengths: number[]; total: number } {
  const lengths = new Array<number>(attachments.length);
  let total = 0;
  for (let i = 0; i < attachments.length; i++) {
    const n = attachments[i]!.byteLength;
    lengths[i] = n;
    total += n;
  }
  return { lengths, total };
}

/**
 * Encodes one frame whose header is already JSON text; with attachments, the text must already say their lengths
 * (`a`), and `attachedBytes` is their sum.
 */
export function encodeFrameText(json: string, attachments: readonly Uint8Array[], attachedBytes: number): Buffer[] {
  const headerBytes = Buffer.byteLength(json, "utf8");
  const frameLength = 4 + headerBytes + attachedBytes;
  if (frameLength > MAX_U32) {
    throw new RangeError(`frame of ${frameLength} bytes exceeds the protocol's 4 GiB limit`);
  }
  const inline = attachedBytes < COPY_ATTACHMENTS_BELOW;
  const head = Buffer.allocUnsafe(8 + headerBytes + (inline ? attachedBytes : 0));
  head.writeUInt32BE(frameLength, 0);
  head.writeUInt32BE(headerBytes, 4);
  head.write(json, 8, "utf8");
  if (attachments.length === 0) return [head];
  if (inline) {
    let offset = 8 + headerBytes;
    for (const bytes of attachments) {
      head.set(bytes, offset);
      offset += bytes.byteLength;
    }
    return [head];
  }
  const chunks: Buffer[] = [head];
  for (const bytes of attachments) {
    if (bytes.byteLength > 0) chunks.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }
  return chunks;
}

/** The limits a decoder enforces (see limits.ts); missing ones take their defaults. */
export type FrameLimits = Pick<ProtocolLimits, "maxFrameBytes" | "maxHeaderBytes" | "maxAttachments">;

/** A frame that is a header alone up to this many bytes is offered to the decoder's `onLoneHeader` first. */
export const LONE_HEADER_BYTES = 4096;

/**
 * Offered the header bytes `data[start, end)` of a small frame that is a header alone (no attachments) before anything
 * is decoded: true when it handled the frame (a shape it recognises, checked as strictly as the general path would),
 * false to let the decoder parse it as usual. A hot path's way round the header's text and object; it must read
 * nothing outside the range (other frames may share `data`), and may throw a ProtocolError as onFrame may.
 */
export type LoneHeaderHandler = (data: Buffer, start: number, end: number) => boolean;

/** A frame this long or longer is gathered into one buffer as it arrives (FrameDecoder.large). */
const GATHER_FROM = 1024 * 1024;

/**
 * Incremental frame decoder: feed it stream chunks in order; it calls `onFrame` once per complete frame,
 * however the chunks split or merge frames. Attachments are views over the chunks it was given (or over one
 * concatenation of them, or over the buffer a large frame is gathered into), so chunks must not be reused by the
 * caller. Throws ProtocolError on a malformed frame or one past a limit (an oversized one as soon as its length
 * field arrives, so it is never buffered); after that the decoder stays broken and the stream must be dropped.
 */
export class FrameDecoder {
  readonly maxFrameBytes: number;
  private readonly limits: FrameLimits;
  private readonly onFrame: (frame: Frame) => void;
  /** Buffered bytes of an incomplete frame, in arrival order. */
  private parts: Buffer[] = [];
  private buffered = 0;
  /** Byte length (prefix included) of the frame being buffered, or -1 while its prefix is incomplete. */
  private needed = -1;
  /**
   * A large frame (GATHER_FROM bytes or more), prefix included, copied in as its chunks arrive once half of it is
   * here: the list of chunks is not kept whole beside one concatenation at its end (twice the frame's memory).
   * Allocated only once half has arrived, so a length announced by a guest and never sent commits no more memory
   * than the bytes it did send, twice over, as the concatenation did (strict overcommit counts allocations).
   */
  private large: Buffer | undefined;
  private failed: ProtocolError | undefined;

  constructor(
    onFrame: (frame: Frame) => void,
    options: Partial<FrameLimits> = {},
    private readonly onLoneHeader?: LoneHeaderHandler,
  ) {
    const max = options.maxFrameBytes ?? DEFAULT_LIMITS.maxFrameBytes;
    if (!Number.isSafeInteger(max) || max < 8 || max > MAX_U32) {
      throw new RangeError(`maxFrameBytes must be an integer between 8 and ${MAX_U32}, got ${max}`);
    }
    this.maxFrameBytes = max;
    this.limits = {
      maxFrameBytes: max,
      maxHeaderBytes: options.maxHeaderBytes ?? DEFAULT_LIMITS.maxHeaderBytes,
      maxAttachments: options.maxAttachments ?? DEFAULT_LIMITS.maxAttachments,
    };
    this.onFrame = onFrame;
  }

  /** Bytes held for a frame that has not fully arrived. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  push(chunk: Uint8Array): void {
    if (this.failed) throw this.failed;
    try {
      this.consume(chunk);
    } catch (err) {
      throw this.fail(err);
    }
  }

  /**
   * Offers `chunk` whole to onLoneHeader when nothing is buffered and it is exactly one small frame that is a header
   * alone, within the limits: true when the handler took it. False, with nothing done, for any other chunk (or one
   * the handler declined): push() it. The commonest read, one reply, in the fewest steps.
   */
  pushLone(chunk: Buffer): boolean {
    if (this.failed !== undefined || this.buffered > 0 || this.large !== undefined) return false;
    const length = chunk.length - 4;
    // One whole frame within the limits, or push() refuses what is wrong with its message; loneHeader checks the rest.
    if (length < 4 || length > this.maxFrameBytes || length - 4 > this.limits.maxHeaderBytes) return false;
    if (chunk.readUInt32BE(0) !== length) return false;
    try {
      return this.loneHeader(chunk, 0, chunk.length);
    } catch (err) {
      throw this.fail(err);
    }
  }

  /** Breaks the decoder for good with `err` (as a ProtocolError), dropping what it buffered; returns that error. */
  private fail(err: unknown): ProtocolError {
    this.parts = [];
    this.large = undefined;
    this.buffered = 0;
    this.failed =
      err instanceof ProtocolError ? err : new ProtocolError(`frame decoding failed: ${err}`, { cause: err });
    return this.failed;
  }

  private consume(chunk: Uint8Array): void {
    let data = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.large !== undefined) {
      const taken = Math.min(data.length, this.needed - this.buffered);
      data.copy(this.large, this.buffered, 0, taken);
      this.buffered += taken;
      if (this.buffered < this.needed) return;
      const frame = this.large;
      this.large = undefined;
      this.buffered = 0;
      this.needed = -1;
      this.onFrame(parseFrame(frame.subarray(4), this.limits));
      if (taken === data.length) return;
      data = data.subarray(taken);
    } else if (this.buffered > 0) {
      this.parts.push(data);
      this.buffered += data.length;
      if (this.needed < 0) {
        if (this.buffered < 4) return;
        if (this.parts[0]!.length < 4) this.parts = [Buffer.concat(this.parts, this.buffered)];
        this.needed = 4 + this.frameLength(this.parts[0]!, 0);
      }
      if (this.buffered < this.needed) return this.gatherIfLarge();
      data = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.buffered);
      this.parts = [];
      this.buffered = 0;
      this.needed = -1;
    }
    let offset = 0;
    while (data.length - offset >= 4) {
      const end = offset + 4 + this.frameLength(data, offset);
      // The header length is checked as soon as it is here, so an oversized header is never buffered whole.
      if (data.length - offset >= 8) this.headerLength(data, offset + 4, end - offset - 8);
      if (end > data.length) {
        this.needed = end - offset;
        break;
      }
      if (!this.loneHeader(data, offset, end)) this.onFrame(parseFrame(data.subarray(offset + 4, end), this.limits));
      offset = end;
    }
    if (offset < data.length) {
      // Keep a view when a large part remains (the frame body will be concatenated once it is complete);
      // copy a tiny remainder so a whole read buffer is not pinned by a few bytes.
      const rest = data.subarray(offset);
      this.parts.push(rest.length < 64 ? Buffer.from(rest) : rest);
      this.buffered = rest.length;
      this.gatherIfLarge();
    }
  }

  /** Once half of a large frame is here, its buffered parts move into the one buffer the rest is copied into. */
  private gatherIfLarge(): void {
    if (this.needed < GATHER_FROM || this.buffered * 2 < this.needed) return;
    this.large = Buffer.allocUnsafeSlow(this.needed);
    let at = 0;
    for (const part of this.parts) at += part.copy(this.large, at);
    this.parts = [];
  }

  /** Whether onLoneHeader took the frame in data[offset, end), offered it when it is a small header alone. */
  private loneHeader(data: Buffer, offset: number, end: number): boolean {
    if (this.onLoneHeader === undefined) return false;
    const length = end - offset - 8;
    if (length > LONE_HEADER_BYTES || data.readUInt32BE(offset + 4) !== length) return false;
    return this.onLoneHeader(data, offset + 8, end);
  }

  private headerLength(data: Buffer, offset: number, room: number): void {
    const length = data.readUInt32BE(offset);
    if (length > room) return; // parseFrame says what is wrong with it
    if (length > this.limits.maxHeaderBytes)
      throw overLimit("maxHeaderBytes", "frame header bytes", length, this.limits.maxHeaderBytes);
  }

  private frameLength(data: Buffer, offset: number): number {
    const length = data.readUInt32BE(offset);
    if (length < 4) throw new ProtocolError(`frame length ${length} is shorter than its header length field`);
    if (length > this.maxFrameBytes) throw overLimit("maxFrameBytes", "frame bytes", length, this.maxFrameBytes);
    return length;
  }
}

/**
 * Parses a frame body (everything after the frame length field) and checks its lengths and limits. Each check
 * is O(1) but the depth walk, which only a header longer than twice the depth limit can need (every level costs
 * an opening and a closing bracket), so small frames never pay for it.
 */
function parseFrame(body: Buffer, limits: FrameLimits): Frame {
  const headerLength = body.readUInt32BE(0);
  if (headerLength > body.length - 4) {
    throw new ProtocolError(`header length ${headerLength} exceeds the frame's ${body.length - 4} remaining bytes`);
  }
  if (headerLength > limits.maxHeaderBytes)
    throw overLimit("maxHeaderBytes", "frame header bytes", headerLength, limits.maxHeaderBytes);
  let header: unknown;
  try {
    header = JSON.parse(body.toString("utf8", 4, 4 + headerLength));
  } catch (err) {
    throw new ProtocolError(`frame header is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (headerLength > 2 * MAX_HEADER_DEPTH && nestsDeeperThan(header, MAX_HEADER_DEPTH)) {
    throw new ProtocolError(`frame header nests deeper than the limit maxDepth = ${MAX_HEADER_DEPTH} levels`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw new ProtocolError("frame header must be a JSON object");
  }
  const record = header as Record<string, unknown>;
  const lengths = record.a;
  let offset = 4 + headerLength;
  if (lengths === undefined) {
    if (offset !== body.length) {
      throw new ProtocolError(`frame has ${body.length - offset} bytes after its header but no attachment list "a"`);
    }
    return { header: record, attachments: [], size: body.length };
  }
  if (!Array.isArray(lengths)) throw new ProtocolError('attachment list "a" must be an array of lengths');
  if (lengths.length > limits.maxAttachments)
    throw overLimit("maxAttachments", "frame attachments", lengths.length, limits.maxAttachments);
  const attachments = new Array<Uint8Array>(lengths.length);
  for (let i = 0; i < lengths.length; i++) {
    const n: unknown = lengths[i];
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) {
      throw new ProtocolError(`attachment length a[${i}] must be a non-negative integer, got ${JSON.stringify(n)}`);
    }
    if (n > body.length - offset) {
      throw new ProtocolError(`attachment ${i} of ${n} bytes runs past the end of the frame`);
    }
    attachments[i] = new Uint8Array(body.buffer, body.byteOffset + offset, n);
    offset += n;
  }
  if (offset !== body.length) {
    throw new ProtocolError(`frame length disagrees with its parts: ${body.length - offset} bytes left over`);
  }
  return { header: record, attachments, size: body.length };
}
