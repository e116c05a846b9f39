// Value codec: JS values <-> JSON with tags ($bytes, $int, $float, $fn, $map, $iter) plus binary attachments.

import { decodeValues } from "./codec-decode.js";
import { encodeCallValues, encodeValue } from "./codec-encode.js";
import type { BytesFd } from "./bytes-fd.js";
import type { CallableHooks, CodecParts, EncodedValue, ValueKind } from "./value-kind.js";

export { MAX_DEPTH } from "./codec-encode.js";

export interface CodecOptions {
  kinds?: readonly ValueKind[];
  callables?: CallableHooks;
  /** Send bytes of `threshold` or more as a sealed memfd, and accept such bytes (needs an fd channel). */
  bytesFd?: BytesFd;
}

/** Built-in tags; value kinds may not claim them. */
export const BUILTIN_TAGS: readonly string[] = ["$bytes", "$int", "$float", "$fn", "$map", "$iter"];

const noCallables: CallableHooks = {
  exportFn() {
    throw new TypeError("cannot send a function: this codec has no callable hooks");
  },
  importFn(id) {
    throw new TypeError(`cannot receive callable ${id}: this codec has no callable hooks`);
  },
};

/** Encodes and decodes message values. One per peer; stateless between calls. */
export class Codec implements CodecParts {
  readonly kinds: readonly ValueKind[];
  readonly callables: CallableHooks;
  readonly byTag: ReadonlyMap<string, ValueKind>;
  readonly bytesFd: BytesFd | undefined;

  constructor(options: CodecOptions = {}) {
    this.kinds = options.kinds ?? [];
    this.bytesFd = options.bytesFd;
    this.callables = options.callables ?? noCallables;
    const byTag = new Map<string, ValueKind>();
    for (const kind of this.kinds) {
      if (!kind.tag.startsWith("$") || BUILTIN_TAGS.includes(kind.tag) || byTag.has(kind.tag)) {
        throw new TypeError(`value kind tag ${JSON.stringify(kind.tag)} must start with "$" and be unique`);
      }
      byTag.set(kind.tag, kind);
    }
    this.byTag = byTag;
  }

  /**
   * Encodes `value` for the wire. The result's `value` is `value` itself when nothing needed a change.
   * Throws TypeError naming the type and where it sits (`root` names the value itself in that path, e.g.
   * "cannot send a Date at args[1].when"). `callId`: the value is call `callId`'s arguments, so its large bytes may
   * ride in the connection's pooled memfds until the call is answered.
   */
  encode(value: unknown, root = "value", callId?: number): EncodedValue {
    return encodeValue(this, value, root, callId);
  }

  /**
   * Encodes a call's `args` and keyword arguments `kw` (names already checked) as one frame's values: tags in
   * either share its attachments and fds. Refusals name `args[i]...` or `kwargs.name...`.
   */
  encodeCall(args: unknown[], kw: Record<string, unknown>, callId?: number): EncodedValue & { kw: unknown } {
    return encodeCallValues(this, args, kw, callId);
  }

  /**
   * Decodes a value read from a frame whose header had `x: 1`, using the frame's attachments (returned as
   * views, not copies). Mutates `value` in place where tags are replaced. Throws ProtocolError when a tag
   * is malformed or unknown. `fds` came with the frame: the codec owns them and closes (with `closeFd`) those
   * that no value kind took, also when decoding fails.
   */
  decode(
    value: unknown,
    attachments: readonly Uint8Array[] = [],
    fds: readonly number[] = [],
    closeFd?: (fd: number) => void,
  ): unknown {
    return decodeValues(this, [value], attachments, fds, closeFd)[0];
  }

  /** Decodes several values of one frame (a call's `args` and `kw`) as `decode` does, sharing its fds; in place. */
  decodeAll(
    values: unknown[],
    attachments: readonly Uint8Array[] = [],
    fds: readonly number[] = [],
    closeFd?: (fd: number) => void,
  ): unknown[] {
    return decodeValues(this, values, attachments, fds, closeFd);
  }
}
