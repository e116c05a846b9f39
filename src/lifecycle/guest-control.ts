// The guest's control messages as every transport routes them: events to the session, hello/ready/fatal through the
// handshake's checks, anything else a ProtocolError. The local (fd 3 or TCP) and the remote sessions share it.

import { ProtocolError } from "../errors.js";
import type { ControlMessage } from "../rpc/protocol.js";
import { Handshake, type HandshakeStep } from "./handshake.js";

type Step<K extends HandshakeStep["kind"]> = Extract<HandshakeStep, { kind: K }>;

/** What a session does at each step; `fail` gets a malformed, late or unexpected message as a typed error. */
export interface GuestControlHandlers {
  event(name: string, payload: unknown): void;
  /** hello accepted: send init (the guest's Python version and pid are in `step`). */
  init(step: Step<"init">): void;
  ready(step: Step<"ready">): void;
  fail(error: Error): void;
}

/** The onControl handler of one guest's RpcPeer: one handshake, checked field by field (handshake.ts). */
export function guestControl(name: string, handlers: GuestControlHandlers): (message: ControlMessage) => void {
  const greeting = new Handshake(name);
  return (message) => {
    if (message.k === "event") return handlers.event(message.name, message.payload);
    if (message.k !== "hello" && message.k !== "ready" && message.k !== "fatal")
      return handlers.fail(new ProtocolError(`unexpected "${message.k}" message from extension "${name}"`));
    const step = greeting.accept(message as unknown as Record<string, unknown>);
    switch (step.kind) {
      case "init":
        return handlers.init(step);
      case "ready":
        return handlers.ready(step);
      case "fail":
        return handlers.fail(step.error);
    }
  };
}
