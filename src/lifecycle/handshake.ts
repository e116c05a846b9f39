// The host's side of the handshake as a pure state machine: hello -> (init) -> ready, or fatal. Every field the guest
// sends is checked here, once; anything else, out of order or malformed, is a ProtocolError. Nothing the guest sends
// can throw anything but a typed error out of `accept`.

import { ExtensionLoadError, ProtocolError, RemoteError } from "../errors.js";
import { PROTOCOL_VERSION, type WireError } from "../rpc/protocol.js";

const MAX_NAME_CHARS = 256;
const MAX_METHODS = 10_000;
const MAX_TEXT_CHARS = 64 * 1024;

/** What the host does with one control message of the handshake. */
export type HandshakeStep =
  /**
   * hello: answer with init; `pid` is the Python process the guest says it is (checked by the caller); `batch`: the
   * guest reads batch frames.
   */
  | { kind: "init"; python: string; pid: number | undefined; batch: boolean }
  | { kind: "ready"; methods: string[]; extensionClass: string; streams: string[] }
  /** The start failed: the typed error to reject the load with. */
  | { kind: "fail"; error: ProtocolError | ExtensionLoadError };

type Phase = "hello" | "ready" | "done";

/** One guest's handshake. After `done` (a ready or a failure), every further handshake message is a ProtocolError. */
export class Handshake {
  private phase: Phase = "hello";

  constructor(private readonly name: string) {}

  get done(): boolean {
    return this.phase === "done";
  }

  /** The step for a control message of kind hello, ready or fatal (`message` is the whole decoded header). */
  accept(message: Record<string, unknown>): HandshakeStep {
    const step = this.step(message);
    this.phase = step.kind === "init" ? "ready" : "done";
    return step;
  }

  private step(message: Record<string, unknown>): HandshakeStep {
    const fail = (why: string): HandshakeStep => ({
      kind: "fail",
      error: new ProtocolError(`extension "${this.name}": ${why}`),
    });
    if (this.phase === "done") return fail(`"${String(message.k).slice(0, 40)}" after the handshake ended`);
    switch (message.k) {
      case "hello": {
        if (this.phase !== "hello") return fail("a second hello");
        if (message.v !== PROTOCOL_VERSION) {
          return fail(
            `speaks protocol version ${JSON.stringify(message.v)?.slice(0, 40)}; this host speaks ${PROTOCOL_VERSION}`,
          );
        }
        if (!isName(message.python, MAX_NAME_CHARS)) return fail(`hello: "python" must be a version string`);
        const pid =
          typeof message.pid === "number" && Number.isSafeInteger(message.pid) && message.pid > 0
            ? message.pid
            : undefined;
        return { kind: "init", python: message.python, pid, batch: message.batch === true };
      }
      case "ready": {
        if (this.phase !== "ready") return fail("ready before hello");
        const methods = message.methods;
        if (
          !Array.isArray(methods) ||
          methods.length > MAX_METHODS ||
          !methods.every((m) => isName(m, MAX_NAME_CHARS))
        ) {
          return fail(`ready: "methods" must be a list of at most ${MAX_METHODS} method names`);
        }
        if (!isName(message.extensionClass, MAX_NAME_CHARS))
          return fail(`ready: "extensionClass" must be a class name`);
        // Optional (streams.md): which methods are generators. Only names among `methods` count.
        const streams = message.streams ?? [];
        const known = new Set<unknown>(methods);
        if (!Array.isArray(streams) || streams.length > methods.length || !streams.every((m) => known.has(m))) {
          return fail(`ready: "streams" must be a list of names from "methods"`);
        }
        return {
          kind: "ready",
          methods: [...methods] as string[],
          extensionClass: message.extensionClass,
          streams: [...streams] as string[],
        };
      }
      case "fatal": {
        const wire = wireError(message.error);
        if (!wire) return fail(`fatal: "error" must be an object with "type" and "message" strings`);
        return {
          kind: "fail",
          error: new ExtensionLoadError(this.name, `${wire.type}: ${wire.message}`, { cause: new RemoteError(wire) }),
        };
      }
      default:
        return fail(`unexpected "${String(message.k).slice(0, 40)}" message during the handshake`);
    }
  }
}

function isName(value: unknown, max: number): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= max;
}

/** Pure: the wire error of a fatal message, bounded, or undefined when it is not one. */
function wireError(value: unknown): WireError | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const { type, message, traceback, module } = value as Record<string, unknown>;
  if (!isName(type, MAX_NAME_CHARS) || typeof message !== "string") return undefined;
  if (traceback !== undefined && typeof traceback !== "string") return undefined;
  if (module !== undefined && typeof module !== "string") return undefined;
  return {
    type,
    message: message.slice(0, MAX_TEXT_CHARS),
    ...(traceback === undefined ? {} : { traceback: traceback.slice(0, MAX_TEXT_CHARS) }),
    ...(module === undefined ? {} : { module: module.slice(0, MAX_NAME_CHARS) }),
  };
}
