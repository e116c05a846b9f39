// The wire as data: the one discriminated union of messages and the constants both sides share (docs/protocol.md).

export const PROTOCOL_VERSION = 1;

/** Default upper bound for one frame (option `limits.maxFrameBytes`); larger frames are a protocol error. */
export const DEFAULT_MAX_FRAME_BYTES = 256 * 1024 * 1024;

/** Credit a stream consumer grants when it gives none (`window`), and the most one stream may hold outstanding. */
export const DEFAULT_STREAM_WINDOW = 16;
export const MAX_STREAM_WINDOW = 65_536;

/** The guest-side target name of the extension object. */
export const EXTENSION_TARGET = "extension";

/** Error as it travels on the wire (from Python or from the host). */
export interface WireError {
  type: string;
  message: string;
  traceback?: string;
  module?: string;
}

/** Header fields the framing adds: `x` (1 when values hold tags) and `f` (fds sent beside the frame). */
interface Framed {
  x?: 1;
  f?: number;
}

export interface HelloMessage {
  k: "hello";
  v: number;
  runtime: string;
  python: string;
  pid: number;
  /** The guest reads batch frames (docs/protocol.md, Batches). */
  batch?: boolean;
}
export interface InitMessage {
  k: "init";
  v: number;
  name: string;
  modulePath: string;
  extensionClass: string | null;
  /** How tensors travel (absent: copies only); see docs/tensors.md. */
  tensors?: { transport: "shm" | "copy"; fd?: number; bytesFd?: number; bytesReturn?: true };
  /** The host's limits on the frames it reads (docs/protocol.md, Limits), so the guest refuses first. */
  limits?: { maxFrameBytes: number; maxHeaderBytes: number; maxAttachments: number; maxFdsPerFrame: number };
  /** The host services this extension may call now: their ProxiedSingletons are remote, the others local. */
  services?: string[];
  /** Enter torch.inference_mode() for the hooks and every call (a shared torch; the `inferenceMode` option). */
  inferenceMode?: boolean;
  /** How long the guest's event loop polls for a message before it sleeps, in µs (absent: the guest's default). */
  idlePollUs?: number;
  /** The host reads batch frames: the guest may send its plain replies in them. */
  batch?: boolean;
}
/** `streams`: the methods among `methods` that are (async) generator functions, so the proxy streams them. */
export interface ReadyMessage {
  k: "ready";
  methods: string[];
  extensionClass: string;
  streams?: string[];
}
export interface FatalMessage {
  k: "fatal";
  error: WireError;
}
export interface ShutdownMessage {
  k: "shutdown";
}
/** A call of `target.method` or of the callable `fn`; `kw` (Python identifiers) is absent when there are none. */
/** `stream` (1..MAX_STREAM_WINDOW): answer with `item`s, this many at first, then as `credit` grants (docs/protocol.md, Streams). */
export type CallMessage = Framed & {
  k: "call";
  id: number;
  args: unknown[];
  kw?: Record<string, unknown>;
  stream?: number;
} & ({ target: string; method: string; fn?: undefined } | { fn: number; target?: undefined; method?: undefined });
export interface ResultMessage extends Framed {
  k: "result";
  id: number;
  value: unknown;
}
export interface ErrorMessage {
  k: "error";
  id: number;
  error: WireError;
}
export interface CancelMessage {
  k: "cancel";
  id: number;
}
/** One item of the stream call `id`, from its callee; the stream ends with that call's `result` or `error`. */
export interface ItemMessage extends Framed {
  k: "item";
  id: number;
  value: unknown;
}
/** The caller of stream call `id` lets its callee send `n` more items. */
export interface CreditMessage {
  k: "credit";
  id: number;
  n: number;
}
export interface EventMessage extends Framed {
  k: "event";
  name: string;
  payload: unknown;
}
/**
 * Callables (`fns`) and, owned by the tensor value kind, shared segments (`segs`) either side may drop; `cuda`
 * (extension to host): host keys of CUDA tensors it freed, once per opening; `cudaExports` (host to extension):
 * its own exports nobody holds.
 */
export interface ReleaseMessage {
  k: "release";
  fns: number[];
  segs?: number[];
  cuda?: string[];
  cudaExports?: number[];
  /** Host to extension: numbers of memfds it lent from its pool for bytes, now copied out (see Bytes). */
  bytes?: number[];
}

/** Messages the peer hands to its owner uninterpreted (events with their payload decoded). */
export type ControlMessage = HelloMessage | InitMessage | ReadyMessage | FatalMessage | EventMessage | ShutdownMessage;

/** The messages a batch may hold: plain ones, without tags (`x`), attachments or fds. */
export type BatchedMessage = CallMessage | ResultMessage | ErrorMessage;
/** Several plain calls, results and errors in one frame (docs/protocol.md, Batches), in the order they were sent. */
export interface BatchMessage {
  k: "batch";
  m: BatchedMessage[];
}
/** Plain calls of one target and method in one frame: call `ids[i]` is `target.method(...args[i])`. */
export interface CallsMessage {
  k: "calls";
  target: string;
  method: string;
  ids: number[];
  args: unknown[][];
}
/** Plain results in one frame: the call `ids[i]` returned `values[i]`. */
export interface ResultsMessage {
  k: "results";
  ids: number[];
  values: unknown[];
}
/** The most messages one batch, calls or results frame may hold. */
export const MAX_BATCH = 4096;

export type Message =
  | BatchMessage
  | CallsMessage
  | ResultsMessage
  | ControlMessage
  | CallMessage
  | ResultMessage
  | ErrorMessage
  | CancelMessage
  | ReleaseMessage
  | ItemMessage
  | CreditMessage;
