// One running extension: its lifecycle state machine, calls, proxy, events and output.

import { EventEmitter } from "node:events";
import type { CallOptions } from "./config/options.js";
import type { Environment } from "./env/builder.js";
import { ExtensionClosedError, ExtensionCrashedError, type ExitInfo } from "./errors.js";
import type { Logger } from "./logger.js";
import type { GuestProcess } from "./process/guest-process.js";
import { EXTENSION_TARGET } from "./rpc/protocol.js";
import type { RpcPeer } from "./rpc/peer.js";
import type { SandboxInfo } from "./sandbox/types.js";

export type ExtensionState = "starting" | "ready" | "stopping" | "stopped" | "crashed";

/** Event names the host itself emits on an Extension; a Python event of these names is dropped. */
export const RESERVED_EVENTS = new Set(["stdout", "stderr", "exit", "stateChange", "dropped", "newListener", "removeListener"]);

/**
 * A callable view of the extension: `ext.proxy.mean(xs)` is `ext.call("mean", [xs])`, and
 * `ext.proxy.mean(xs, kwargs({ axis: 0 }))` calls `mean(xs, axis=0)`.
 */
export type ExtensionProxy = Record<string, (...args: unknown[]) => Promise<unknown>>;

export interface ExtensionParts {
  name: string;
  environment: Environment;
  sandbox: SandboxInfo;
  process: GuestProcess;
  peer: RpcPeer;
  logger: Logger;
  callTimeoutMs: number | undefined;
  stopGraceMs: number;
  /** Runs once the extension is stopped or crashed: frees private folders, unregisters it. */
  onFinished: () => Promise<void>;
}

export class Extension extends EventEmitter {
  readonly name: string;
  readonly environment: Environment;
  /** What confines this extension: the backend that ran, the host's restriction model, and whether it fell back. */
  readonly sandbox: Readonly<SandboxInfo>;
  /** Public methods the extension object offers, as reported at start. */
  methods: readonly string[] = [];
  /** `"module:Class"` of the extension object. */
  extensionClass = "";
  /** The guest's Python version. */
  pythonVersion = "";
  readonly proxy: ExtensionProxy;
  private currentState: ExtensionState = "starting";
  private failure: Error | undefined;
  private stopping: Promise<void> | undefined;
  private readonly parts: ExtensionParts;

  /** @internal Made by ExtensionManager.load(). */
  constructor(parts: ExtensionParts) {
    super();
    this.parts = parts;
    this.name = parts.name;
    this.environment = parts.environment;
    this.sandbox = Object.freeze({ ...parts.sandbox });
    this.proxy = new Proxy({} as ExtensionProxy, {
      // "then" stays undefined so that `await ext.proxy` does not call the extension.
      get: (_, key) => (typeof key === "string" && key !== "then" ? (...args: unknown[]) => this.call(key, args) : undefined),
    });
  }

  get state(): ExtensionState {
    return this.currentState;
  }

  /**
   * The extension's Python process (under bwrap: bwrap's, the sandbox's outer process). Killing it kills everything
   * the extension started.
   */
  get pid(): number | undefined {
    return this.parts.process.extensionPid;
  }

  /** @internal The process group the host spawned (the guest's supervisor or bwrap leads it). */
  get processGroup(): number | undefined {
    return this.parts.process.pid;
  }

  /**
   * Calls a public method of the extension object. Keyword arguments go in `options.kwargs`, or as a `kwargs()`
   * marker last in `args`: `ext.call("mean", [x], { kwargs: { axis: 0 } })` is `mean(x, axis=0)` in Python.
   */
  call(method: string, args: unknown[] = [], options: CallOptions = {}): Promise<unknown> {
    if (this.currentState !== "ready") {
      return Promise.reject(this.failure ?? new ExtensionClosedError(`extension "${this.name}" is ${this.currentState}`));
    }
    const timeoutMs = options.timeoutMs ?? this.parts.callTimeoutMs;
    return this.parts.peer.call(EXTENSION_TARGET, method, args, { signal: options.signal, timeoutMs, kwargs: options.kwargs });
  }

  /** Stops the extension: its `stop` hook runs, then the process exits (SIGTERM, then SIGKILL if it hangs). */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /** @internal */
  markReady(info: { methods: string[]; extensionClass: string; pythonVersion: string }): void {
    this.methods = Object.freeze([...info.methods]);
    this.extensionClass = info.extensionClass;
    this.pythonVersion = info.pythonVersion;
    this.setState("ready");
  }

  /** @internal Delivers a Python `emit_event` to listeners. */
  deliverEvent(name: string, payload: unknown): void {
    if (RESERVED_EVENTS.has(name)) {
      this.parts.logger.warn(`[${this.name}] event "${name}" is reserved by the host and was dropped`);
    } else if (this.listenerCount(name) === 0) {
      this.parts.logger.debug(`[${this.name}] event "${name}" has no listener; dropped`);
    } else {
      this.emit(name, payload);
    }
  }

  /** @internal The process ended: on its own (a crash) or because we stopped it. */
  handleExit(exit: ExitInfo): void {
    if (this.currentState === "stopping" || this.currentState === "stopped") {
      this.parts.peer.close(new ExtensionClosedError(`extension "${this.name}" was stopped`));
    } else if (this.currentState === "starting") {
      // The load reports this itself, as an ExtensionLoadError.
      this.failure ??= new ExtensionCrashedError(this.name, exit);
      this.parts.peer.close(this.failure);
    } else {
      this.failure = new ExtensionCrashedError(this.name, exit);
      this.parts.peer.close(this.failure);
      this.setState("crashed");
      this.parts.logger.error(this.failure.message);
      void this.parts.onFinished();
    }
    this.emit("exit", exit);
  }

  /** @internal Marks a failure found by the host (protocol error, failed start) and kills the process. */
  fail(error: Error): void {
    this.failure ??= error;
    this.parts.peer.close(error);
    this.parts.process.kill();
  }

  private async shutdown(): Promise<void> {
    if (this.currentState === "stopped" || this.currentState === "crashed") return;
    this.setState("stopping");
    const process = this.parts.process;
    if (!process.hasExited) {
      try {
        this.parts.peer.send({ k: "shutdown" });
      } catch {
        // The socket is already gone; the signals below still end the process.
      }
      await process.terminate(this.parts.stopGraceMs);
    }
    this.parts.peer.close(new ExtensionClosedError(`extension "${this.name}" was stopped`));
    this.setState("stopped");
    await this.parts.onFinished();
  }

  private setState(state: ExtensionState): void {
    this.currentState = state;
    this.emit("stateChange", state);
  }
}
