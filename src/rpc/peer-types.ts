// Public types of the RPC peer: options, call options, state and statistics.

import type { ExtensionClosedError, ProtocolError } from "../errors.js";
import type { CodecExtension } from "./codec.js";
import type { FdChannel } from "./fd-channel.js";
import type { ProtocolLimits } from "./limits.js";
import type {
  EventMessage, FatalMessage, HelloMessage, InitMessage, ReadyMessage, ShutdownMessage,
} from "./protocol.js";

/** Messages the peer hands to its owner uninterpreted (events with their payload decoded). */
export type ControlMessage = HelloMessage | InitMessage | ReadyMessage | FatalMessage | EventMessage | ShutdownMessage;

export interface RpcPeerOptions {
  /** The object whose public methods answer calls to `target` (a host service), or undefined. */
  resolveTarget?: (target: string) => object | undefined;
  /** The other side's name (an extension's): incoming calls run with it as callingExtension(). */
  caller?: string;
  /** Receives hello, init, ready, fatal, shutdown and event messages. */
  onControl?: (message: ControlMessage) => void;
  /** Told when the other side broke the protocol; the peer has already closed with this error. */
  onProtocolError?: (error: ProtocolError) => void;
  /**
   * When set, the end or failure of the stream is reported here instead of closing the peer at once, so
   * the owner can close with a better cause (e.g. an ExtensionCrashedError once the exit status is known).
   * The owner must then call `close()`; until it does, pending calls wait and new calls are held (never sent), and
   * all of them reject with the cause the owner closes with.
   */
  onDisconnect?: (error: ExtensionClosedError) => void;
  /** Extra value kinds (e.g. tensors). */
  extensions?: readonly CodecExtension[];
  /**
   * The socket that carries file descriptors beside the stream (tensor segments); the peer closes it when it
   * closes. Without it, a frame that announces fds is a protocol error.
   */
  fdChannel?: FdChannel;
  /** The other side released its holds on these segments (a `release` message's `segs`). */
  onSegmentsReleased?: (ids: number[]) => void;
  /** The other side freed these CUDA tensors (a `release` message's `cuda`: host keys, once per opening). */
  onCudaReleased?: (keys: string[]) => void;
  /**
   * Asked for each `event` once decoded (so that the tensors and callables in it are booked and later released):
   * false drops it before the owner sees it (the flood gate), so a flood of events calls no listener.
   */
  admitEvent?: (name: string, frameBytes: number) => boolean;
  /** Largest frame accepted from the other side (default: `limits.maxFrameBytes`, else 256 MiB). */
  maxFrameBytes?: number;
  /** What the other side's frames may cost (limits.ts); missing ones take their defaults. */
  limits?: Partial<ProtocolLimits>;
}

export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Keyword arguments (Python identifiers as names), sent as the call's `kw`. */
  kwargs?: Record<string, unknown>;
}

export type PeerState = "open" | "closed";

export interface PeerStats {
  /** Our calls awaiting an answer. */
  pending: number;
  /** The other side's calls we are still running. */
  incoming: number;
  /** Our callables the other side may still call. */
  exported: number;
  /** Live proxies of the other side's callables. */
  imported: number;
}
