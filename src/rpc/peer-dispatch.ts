// Incoming side helpers: message validation, callable-method lookup, and errors to and from the wire.

import { ProtocolError, RemoteError } from "../errors.js";
import type { CallMessage, WireError } from "./protocol.js";

/** A refusal sent back as a builtin Python error type (see docs/protocol.md, Errors). */
export class WireRefusal extends Error {
  constructor(
    readonly type: "LookupError" | "AttributeError" | "TypeError",
    message: string,
  ) {
    super(message);
  }
}

export function isCallId(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value > 0;
}

function isFnId(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/** Checks a `call` header's shape; throws ProtocolError naming the bad field. */
export function checkCall(msg: Record<string, unknown>): asserts msg is Record<string, unknown> & CallMessage {
  if (!isCallId(msg.id)) throw new ProtocolError(`call: "id" must be a positive integer, got ${JSON.stringify(msg.id)}`);
  if (!Array.isArray(msg.args)) throw new ProtocolError(`call ${msg.id}: "args" must be a list`);
  if (msg.fn !== undefined) {
    if (!isFnId(msg.fn)) throw new ProtocolError(`call ${msg.id}: "fn" must be a callable id`);
  } else if (typeof msg.target !== "string" || typeof msg.method !== "string") {
    throw new ProtocolError(`call ${msg.id}: needs "target" and "method" strings, or "fn"`);
  }
}

/** Checks a `release` header and returns its ids. */
export function checkRelease(msg: Record<string, unknown>): number[] {
  const fns = msg.fns;
  if (!Array.isArray(fns) || !fns.every(isFnId)) throw new ProtocolError('release: "fns" must be a list of callable ids');
  return fns;
}

/** Checks an `error` header's error object. */
export function checkWireError(value: unknown, id: number): WireError {
  const wire = value as Partial<WireError> | null;
  if (typeof wire !== "object" || wire === null || typeof wire.type !== "string" || typeof wire.message !== "string"
    || (wire.traceback !== undefined && typeof wire.traceback !== "string")
    || (wire.module !== undefined && typeof wire.module !== "string")) {
    throw new ProtocolError(`error ${id}: "error" must be an object with "type" and "message" strings`);
  }
  return wire as WireError;
}

/** Members every object inherits; never callable remotely, even when a class overrides them. */
const INHERITED = new Set<string>(Object.getOwnPropertyNames(Object.prototype));

/**
 * The public method `name` of `target`: an own or inherited data property holding a function, whose name
 * does not start with "_", is not "constructor", and is not an Object.prototype member name. The search
 * stops at Object.prototype and Function.prototype.
 * Getters are never invoked.
 */
export function lookupMethod(target: object, name: string): Function | undefined {
  if (name === "" || name.charCodeAt(0) === 95 /* _ */ || name === "constructor" || INHERITED.has(name)) return undefined;
  let holder: object | null = target;
  while (holder !== null && holder !== Object.prototype && holder !== Function.prototype) {
    const desc = Object.getOwnPropertyDescriptor(holder, name);
    if (desc !== undefined) return typeof desc.value === "function" ? desc.value : undefined;
    holder = Object.getPrototypeOf(holder) as object | null;
  }
  return undefined;
}

/** Turns anything thrown by a host function into the wire's error object. */
export function toWireError(err: unknown): WireError {
  if (err instanceof WireRefusal) return { type: err.type, message: err.message };
  if (err instanceof RemoteError) {
    // Forward a Python error with its own type, so the guest raises what was raised.
    const prefix = `${err.remoteType}: `;
    const message = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
    const wire: WireError = { type: err.remoteType, message, traceback: err.stack ?? err.remoteTraceback };
    if (err.remoteModule !== undefined) wire.module = err.remoteModule;
    return wire;
  }
  if (err instanceof Error) {
    const wire: WireError = { type: safeString(err.name) || "Error", message: safeString(err.message) };
    if (typeof err.stack === "string") wire.traceback = err.stack;
    return wire;
  }
  return { type: "Error", message: safeString(err) };
}

function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return "<unprintable value>";
  }
}
