// Value codec: JS values <-> JSON with tags ($bytes, $int, $float, $fn, $map) plus binary attachments.

import { decodeValue, decodeValues } from "./codec-decode.js";
import { encodeCallValues, encodeValue } from "./codec-encode.js";

export { MAX_DEPTH } from "./codec-encode.js";
export { MAX_INT_DIGITS } from "./codec-decode.js";

/** What an extension's `encode` may do besides returning its payload. */
export interface EncodeContext {
  /** Adds bytes as an attachment of the frame being built; returns the attachment index. */
  attach(bytes: Uint8Array): number;
  /**
   * Adds a file descriptor to the frame (sent by SCM_RIGHTS beside it, once per fd) and returns its index.
   * `hold` (a segment) is retained until the fd has been sent, so the caller may release it at once.
   */
  addFd(fd: number, hold?: FdHold): number;
  /** Encodes a nested value (so a payload may hold ordinary values, bytes, callables, ...). */
  encode(value: unknown): unknown;
}

/** What keeps an fd open until it is sent (a tensor segment). */
export interface FdHold {
  retain(): unknown;
  release(): unknown;
  /** Called once the fd went out on the fd socket (not when the frame was dropped), before `release`. */
  sent?(): void;
}

/** What the peer offers a codec extension besides frames: tensor segments the receiver may let go. */
export interface CodecLink {
  /** Sends `release` with these segment ids (`segs`): the receiver need not keep them for us any more. */
  releaseSegments(ids: number[]): void;
  /** Sends `release` with these CUDA export ids (`cudaExports`): nobody holds them any more. */
  releaseCudaExports(ids: number[]): void;
}

/** What an extension's `decode` may use. */
export interface DecodeContext {
  /** The frame's attachments. */
  readonly attachments: readonly Uint8Array[];
  /**
   * The descriptors that came with the frame, in order, now owned by the caller; later calls return an empty
   * list. Fds nobody takes are closed by the codec.
   */
  takeFds(): number[];
  /**
   * Per-frame state of an extension: made on first use by `make`, and `close`d once the whole value is
   * decoded (also when decoding fails).
   */
  frameState<T>(key: object, make: () => T, close: (state: T) => void): T;
  /** Attachment `index` of the frame being read; throws ProtocolError when there is none. */
  attachment(index: unknown): Uint8Array;
  /** Decodes a nested tagged value. */
  decode(value: unknown): unknown;
}

/**
 * A pluggable value kind travelling as `{"<tag>": payload}` (tensors arrive this way as `$tensor`).
 * Extensions are consulted, in order, for values that are not JSON-plain and not a built-in kind.
 */
export interface CodecExtension {
  /** The tag including its `$`, e.g. `"$tensor"`. */
  readonly tag: string;
  /** True when this extension encodes `value`. */
  accepts(value: object): boolean;
  /** Returns the JSON-able payload to send under the tag. */
  encode(value: object, context: EncodeContext): unknown;
  /** Turns a received payload back into a value; throw ProtocolError when the payload is malformed. */
  decode(payload: unknown, context: DecodeContext): unknown;
  /** Called once by the peer that uses this extension, with what it may send outside values. */
  bind?(link: CodecLink): void;
}

/** Hooks the RPC peer supplies for callables. */
export interface CallableHooks {
  /** Stores `fn` in the export table and returns its fresh id. */
  exportFn(fn: Function): number;
  /** Returns a proxy function for the callable the other side exported as `id`. */
  importFn(id: number): Function;
}

/** An encoded value: JSON-able (tags included), its attachments, and whether any tag was produced. */
export interface EncodedValue {
  value: unknown;
  attachments: Uint8Array[];
  /** File descriptors to send beside the frame, and what keeps them open until then. */
  fds: number[];
  holds: FdHold[];
  tagged: boolean;
}

export interface CodecOptions {
  extensions?: readonly CodecExtension[];
  callables?: CallableHooks;
}

/** Built-in tags; extensions may not claim them. */
export const BUILTIN_TAGS: readonly string[] = ["$bytes", "$int", "$float", "$fn", "$map"];

const noCallables: CallableHooks = {
  exportFn() {
    throw new TypeError("cannot send a function: this codec has no callable hooks");
  },
  importFn(id) {
    throw new TypeError(`cannot receive callable ${id}: this codec has no callable hooks`);
  },
};

/** Encodes and decodes message values. One per peer; stateless between calls. */
export class Codec {
  readonly extensions: readonly CodecExtension[];
  readonly callables: CallableHooks;
  /** Extensions by tag, for decoding. */
  readonly byTag: ReadonlyMap<string, CodecExtension>;

  constructor(options: CodecOptions = {}) {
    this.extensions = options.extensions ?? [];
    this.callables = options.callables ?? noCallables;
    const byTag = new Map<string, CodecExtension>();
    for (const ext of this.extensions) {
      if (!ext.tag.startsWith("$") || BUILTIN_TAGS.includes(ext.tag) || byTag.has(ext.tag)) {
        throw new TypeError(`codec extension tag ${JSON.stringify(ext.tag)} must start with "$" and be unique`);
      }
      byTag.set(ext.tag, ext);
    }
    this.byTag = byTag;
  }

  /**
   * Encodes `value` for the wire. The result's `value` is `value` itself when nothing needed a change.
   * Throws TypeError naming the type and where it sits (`root` names the value itself in that path, e.g.
   * "cannot send a Date at args[1].when").
   */
  encode(value: unknown, root = "value"): EncodedValue {
    return encodeValue(this, value, root);
  }

  /**
   * Encodes a call's `args` and keyword arguments `kw` (names already checked) as one frame's values: tags in
   * either share its attachments and fds. Refusals name `args[i]...` or `kwargs.name...`.
   */
  encodeCall(args: unknown[], kw: Record<string, unknown>): EncodedValue & { kw: unknown } {
    return encodeCallValues(this, args, kw);
  }

  /**
   * Decodes a value read from a frame whose header had `x: 1`, using the frame's attachments (returned as
   * views, not copies). Mutates `value` in place where tags are replaced. Throws ProtocolError when a tag
   * is malformed or unknown. `fds` came with the frame: the codec owns them and closes (with `closeFd`) those
   * that no extension took, also when decoding fails.
   */
  decode(value: unknown, attachments: readonly Uint8Array[] = [], fds: readonly number[] = [], closeFd?: (fd: number) => void): unknown {
    return decodeValue(this, value, attachments, fds, closeFd);
  }

  /** Decodes several values of one frame (a call's `args` and `kw`) as `decode` does, sharing its fds; in place. */
  decodeAll(values: unknown[], attachments: readonly Uint8Array[] = [], fds: readonly number[] = [], closeFd?: (fd: number) => void): unknown[] {
    return decodeValues(this, values, attachments, fds, closeFd);
  }
}
