// The value-kind plug-in contract (tensors are its one user): a tagged value kind and the wire fields it owns.

import type { BytesFd } from "./bytes-fd.js";
import type { ReleaseMessage } from "./protocol.js";

/** What keeps an fd open until it is sent (a tensor segment). */
export interface FdHold {
  retain(): unknown;
  release(): unknown;
  /** Called once the fd went out on the fd socket (not when the frame was dropped), before `release`. */
  sent?(): void;
}

/** What a kind's `encode` may do besides returning its payload. */
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

/** What a kind's `decode` may use. */
export interface DecodeContext {
  /** The frame's attachments. */
  readonly attachments: readonly Uint8Array[];
  /** The frame's descriptors, now owned by the caller; later calls return []. Fds nobody takes are closed. */
  takeFds(): number[];
  /** Per-frame state: made on first use by `make`, `close`d once the whole value is decoded (or failed). */
  frameState<T>(key: object, make: () => T, close: (state: T) => void): T;
  /** Attachment `index` of the frame being read; throws ProtocolError when there is none. */
  attachment(index: unknown): Uint8Array;
  /** Decodes a nested tagged value. */
  decode(value: unknown): unknown;
}

/** The wire fields of `release` a value kind owns, as the peer sends them for it. */
export type KindRelease = Pick<ReleaseMessage, "segs" | "cudaExports">;

/**
 * A value kind travelling as `{"<tag>": payload}` (tensors as `$tensor`), consulted in order for values that are
 * not JSON-plain and not built in. It owns the `release` fields beyond `fns`: it sends them through `bind`'s
 * `send` and receives them, checked by parseMessage, in `released`.
 */
export interface ValueKind {
  /** The tag including its `$`, e.g. `"$tensor"`. */
  readonly tag: string;
  /** True when this kind encodes `value`. */
  accepts(value: object): boolean;
  /** Returns the JSON-able payload to send under the tag. */
  encode(value: object, context: EncodeContext): unknown;
  /** Turns a received payload back into a value; throw ProtocolError when the payload is malformed. */
  decode(payload: unknown, context: DecodeContext): unknown;
  /** Called once by the peer that carries this kind, with how to send a `release` of the kind's fields. */
  bind?(send: (fields: KindRelease) => void): void;
  /** The other side released what these fields of a `release` name. */
  released?(message: ReleaseMessage): void;
}

/** A function as the wire sees it: called with decoded arguments, returning anything. */
export type AnyFunction = (...args: unknown[]) => unknown;

/** Hooks the RPC peer supplies for callables. */
export interface CallableHooks {
  /** Stores `fn` in the export table and returns its fresh id. */
  exportFn(fn: AnyFunction): number;
  /** Returns a proxy function for the callable the other side exported as `id`. */
  importFn(id: number): AnyFunction;
  /** Stores an async iterable or generator for the other side to stream (`$iter`) and returns its fresh id. */
  exportStream?(source: AsyncIterable<unknown> | Iterator<unknown>): number;
}

/** What the encode and decode walks read from their codec. */
export interface CodecParts {
  readonly kinds: readonly ValueKind[];
  /** Kinds by tag, for decoding. */
  readonly byTag: ReadonlyMap<string, ValueKind>;
  readonly callables: CallableHooks;
  /** Where large bytes may cross as a sealed memfd (a connection with an fd channel); absent: always attachments. */
  readonly bytesFd?: BytesFd | undefined;
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
