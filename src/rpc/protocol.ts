// The wire protocol as data: message shapes and constants shared by every host module (see docs/protocol.md).

export const PROTOCOL_VERSION = 1;

/** Default upper bound for one frame (option `limits.maxFrameBytes`); larger frames are a protocol error. */
export const DEFAULT_MAX_FRAME_BYTES = 256 * 1024 * 1024;

/** The guest-side target name of the extension object. */
export const EXTENSION_TARGET = "extension";

/** Error as it travels on the wire (from Python or from the host). */
export interface WireError {
  type: string;
  message: string;
  traceback?: string;
  module?: string;
}

export interface HelloMessage { k: "hello"; v: number; runtime: string; python: string; pid: number }
export interface InitMessage {
  k: "init";
  v: number;
  name: string;
  modulePath: string;
  extensionClass: string | null;
  /** How tensors travel (absent: copies only); see docs/tensors.md. */
  tensors?: { transport: "shm" | "copy"; fd?: number };
  /** The host's limits on the frames it reads (docs/protocol.md, Limits), so the guest refuses first. */
  limits?: { maxFrameBytes: number; maxHeaderBytes: number; maxAttachments: number; maxFdsPerFrame: number };
  /** The host services this extension may call now: their ProxiedSingletons are remote, the others local. */
  services?: string[];
  /** Enter torch.inference_mode() for the hooks and every call (a shared torch; the `inferenceMode` option). */
  inferenceMode?: boolean;
}
export interface ReadyMessage { k: "ready"; methods: string[]; extensionClass: string }
export interface FatalMessage { k: "fatal"; error: WireError }
export interface CallMessage {
  k: "call";
  id: number;
  target?: string;
  method?: string;
  fn?: number;
  args: unknown[];
  /** Keyword arguments by name (Python identifiers); absent when there are none. */
  kw?: Record<string, unknown>;
}
export interface ResultMessage { k: "result"; id: number; value: unknown }
export interface ErrorMessage { k: "error"; id: number; error: WireError }
export interface CancelMessage { k: "cancel"; id: number }
export interface EventMessage { k: "event"; name: string; payload: unknown }
/**
 * Callables (`fns`) and shared segments (`segs`) either side may drop; `cuda` (extension to host): host keys
 * of CUDA tensors it freed, once per opening; `cudaExports` (host to extension): its own exports nobody holds.
 */
export interface ReleaseMessage { k: "release"; fns: number[]; segs?: number[]; cuda?: string[]; cudaExports?: number[] }
export interface ShutdownMessage { k: "shutdown" }

export type Message =
  | HelloMessage | InitMessage | ReadyMessage | FatalMessage
  | CallMessage | ResultMessage | ErrorMessage | CancelMessage
  | EventMessage | ReleaseMessage | ShutdownMessage;

/** Header fields added by the framing layer, not part of the message itself. */
export interface FrameFields {
  /** Attachment lengths, in order. */
  a?: number[];
  /** 1 when the message holds tagged values. */
  x?: 1;
  /** How many file descriptors came with the frame on the fd socket. */
  f?: number;
}

export type MessageKind = Message["k"];
