// The `init` message a guest gets after its hello, built in one place for every transport: a local guest (fd 3 or
// TCP) and a remote one (src/remote/remote-session.ts) carry the same fields, the frame limits included.

import type { ProtocolLimits } from "../rpc/limits.js";
import { PROTOCOL_VERSION, type InitMessage } from "../rpc/protocol.js";

/** How long a guest's event loop polls for a message before it sleeps, by default and at most (idlePollMicros). */
export const DEFAULT_IDLE_POLL_MICROS = 100;
export const MAX_IDLE_POLL_MICROS = 1000;

export interface InitInput {
  name: string;
  /** The extension's folder as the guest finds it (a remote guest's PYISOLATE_MODULE_PATH wins over it). */
  modulePath: string;
  extensionClass: string | undefined;
  /** How tensors travel (TensorLink.init). */
  tensors: NonNullable<InitMessage["tensors"]>;
  /** What the host reads from this guest: it refuses a message past them itself, with a ValueError. */
  limits: ProtocolLimits;
  /** The host services this extension may call now. */
  services: string[];
  /** Hooks and calls under torch.inference_mode(). */
  inferenceMode: boolean;
  /** The `idlePollMicros` option (default DEFAULT_IDLE_POLL_MICROS). */
  idlePollMicros?: number;
}

/** The init message for `input`: the frame limits the guest checks before it writes, never the host-only ones. */
export function buildInit(input: InitInput): InitMessage {
  const { limits } = input;
  return {
    k: "init",
    v: PROTOCOL_VERSION,
    name: input.name,
    modulePath: input.modulePath,
    extensionClass: input.extensionClass ?? null,
    tensors: input.tensors,
    limits: {
      maxFrameBytes: limits.maxFrameBytes,
      maxHeaderBytes: limits.maxHeaderBytes,
      maxAttachments: limits.maxAttachments,
      maxFdsPerFrame: limits.maxFdsPerFrame,
    },
    services: input.services,
    inferenceMode: input.inferenceMode,
    idlePollUs: input.idlePollMicros ?? DEFAULT_IDLE_POLL_MICROS,
    batch: true, // this host reads batch frames (docs/protocol.md#batches)
  };
}
