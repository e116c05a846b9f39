// The host's book of CUDA tensors shared by IPC handle: who made each one, who holds it, when it may be freed.

import { ProtocolError } from "../errors.js";
import { CudaTensor, type CudaDescriptor, type CudaExportRef } from "./cuda.js";
import { validateDescriptor, type CudaStorage } from "./descriptor.js";

/** One extension connection, as the CUDA ledger sees it (a TensorLink). */
export interface CudaPeer {
  /** The extension's ledger name, unique to its process (name and pid). */
  readonly holder: string;
  /** Tells the extension to drop these exports of its own: nobody holds them any more. */
  releaseExports(ids: number[]): void;
}

/** One live export as `liveCudaExports()` reports it. */
export interface CudaExportRecord {
  key: string;
  producer: string;
  /** Live CudaTensor objects of the host. */
  host: number;
  /** Deliveries each consumer (by ledger name) has not released yet. */
  consumers: Record<string, number>;
}

class Entry implements CudaExportRef {
  gone: string | undefined;
  hostObjects = 0;
  /** Deliveries per consumer: each opening in an extension is released on its own. */
  readonly consumers = new Map<string, number>();

  constructor(
    readonly key: string,
    readonly producerPeer: CudaPeer,
    readonly exportId: number,
    /** The producer's storage, with the key: what every delivery carries, whoever sent the tensor on. */
    readonly storage: CudaStorage,
  ) {}

  get producer(): string {
    return this.producerPeer.holder;
  }

  get free(): boolean {
    return this.gone === undefined && this.hostObjects === 0 && this.consumers.size === 0;
  }
}

const noExport = (key: string, producer: string, gone: string): CudaExportRef => ({ key, producer, gone });

/**
 * torch's own IPC counting cannot be used across sandboxes (see python/pyisolate/_guest/tensors_cuda.py), so the
 * host counts: a producer keeps each storage it sent until this book says that the host's CudaTensor objects and
 * every consumer let go. A consumer is counted once per delivery and releases once per storage it opened.
 */
export class CudaLedger {
  readonly #exports = new Map<string, Entry>();
  readonly #registry = new FinalizationRegistry<() => void>((drop) => drop());

  /** A CUDA descriptor arrived from `from`: the CudaTensor the host sees. Throws ProtocolError when malformed. */
  received(payload: unknown, from: CudaPeer): CudaTensor {
    const raw = payload as { storage?: { ipc?: Record<string, unknown> } };
    const ipc = raw.storage?.ipc;
    if (typeof ipc?.key === "string") return this.#receivedAgain(payload, ipc.key, from);
    const exportId = ipc?.export;
    if (typeof exportId !== "number" || !Number.isSafeInteger(exportId) || exportId < 1) {
      throw new ProtocolError("a CUDA tensor needs storage.ipc.export (a positive integer) or the host's key");
    }
    const descriptor = checked(payload);
    const key = `${from.holder}#${exportId}`;
    let entry = this.#exports.get(key);
    if (entry === undefined) {
      entry = new Entry(key, from, exportId, { ...descriptor.storage, ipc: { ...descriptor.storage.ipc, key } });
      this.#exports.set(key, entry);
    }
    return this.#adopt(entry, { ...descriptor, storage: entry.storage });
  }

  /**
   * The descriptor to send `tensor` to `to`, counted as a delivery to it (none to its own producer, which
   * rebuilds it over its own storage). Throws when the tensor was released or its producer stopped.
   */
  sending(tensor: CudaTensor, to: CudaPeer): CudaDescriptor {
    const why = tensor.unusableBecause;
    if (why !== undefined) throw new Error(`cannot send a CUDA tensor: ${why}`);
    const entry = tensor.exportRef as Entry;
    if (entry.producerPeer !== to) entry.consumers.set(to.holder, (entry.consumers.get(to.holder) ?? 0) + 1);
    return tensor.descriptor;
  }

  /** `holder` freed one opening of each of these keys (a key may repeat). Unknown or over-released keys are ignored. */
  released(holder: string, keys: readonly string[]): void {
    for (const key of keys) {
      const entry = this.#exports.get(key);
      const held = entry?.consumers.get(holder);
      if (entry === undefined || held === undefined) continue;
      if (held > 1) entry.consumers.set(holder, held - 1);
      else entry.consumers.delete(holder);
      this.#freeIfUnheld(entry);
    }
  }

  /** `peer`'s process ended: it holds nothing, and what it made is gone. */
  ended(peer: CudaPeer): void {
    for (const entry of [...this.#exports.values()]) {
      if (entry.producerPeer === peer) {
        entry.gone = `the extension that made it (${peer.holder}) has stopped, and its GPU memory with it`;
        this.#exports.delete(entry.key);
        continue;
      }
      entry.consumers.delete(peer.holder);
      this.#freeIfUnheld(entry);
    }
  }

  /** A snapshot of every export still held. */
  list(): CudaExportRecord[] {
    return [...this.#exports.values()].map((entry) => ({
      key: entry.key,
      producer: entry.producer,
      host: entry.hostObjects,
      consumers: Object.fromEntries(entry.consumers),
    }));
  }

  /** A tensor that crossed before (a consumer sends it on, or the producer sends it back) names the host's key. */
  #receivedAgain(payload: unknown, key: string, from: CudaPeer): CudaTensor {
    const entry = this.#exports.get(key);
    const view = payload as Record<string, unknown>;
    // Only the view comes from the sender: the handle is the producer's, so nobody can swap in another one. A
    // sender that was never given this key (a guess) gets nothing usable out of it.
    const holds = entry !== undefined && (entry.producerPeer === from || (entry.consumers.get(from.holder) ?? 0) > 0);
    if (!holds) {
      const gone = `${from.holder} sent back a CUDA tensor it does not hold (${key}): its producer stopped, or it was never given it`;
      return new CudaTensor(checked(payload), noExport(key, entry?.producer ?? "?", gone), undefined);
    }
    return this.#adopt(entry, checked({ ...view, storage: entry.storage }));
  }

  #adopt(entry: Entry, descriptor: CudaDescriptor): CudaTensor {
    entry.hostObjects += 1;
    const state = { dropped: false };
    const drop = (): void => {
      if (state.dropped) return;
      state.dropped = true;
      entry.hostObjects -= 1;
      this.#freeIfUnheld(entry);
    };
    const tensor = new CudaTensor(descriptor, entry, () => {
      this.#registry.unregister(state);
      drop();
    });
    this.#registry.register(tensor, drop, state);
    return tensor;
  }

  #freeIfUnheld(entry: Entry): void {
    if (!entry.free || this.#exports.get(entry.key) !== entry) return;
    this.#exports.delete(entry.key);
    entry.producerPeer.releaseExports([entry.exportId]);
  }
}

function checked(payload: unknown): CudaDescriptor {
  const { descriptor } = validateDescriptor(payload, { fdCount: 0, attachmentSizes: [] });
  if (descriptor.storage.kind !== "cuda") throw new ProtocolError("expected a CUDA storage");
  return descriptor as CudaDescriptor;
}

/** The book of this host process. */
export const cudaLedger = new CudaLedger();

/** Every CUDA export the host knows to be held, with its holders. */
export function liveCudaExports(): CudaExportRecord[] {
  return cudaLedger.list();
}
