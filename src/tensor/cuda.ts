// A CUDA tensor seen from the host: an opaque torch IPC handle that can only be forwarded to another extension.

import type { CudaStorage, TensorDescriptor } from "./descriptor.js";
import type { DType } from "./dtype.js";

export type CudaDescriptor = TensorDescriptor & { storage: CudaStorage };

/** What a CudaTensor knows of its export in the host's CUDA ledger (src/tensor/cuda-ledger.ts). */
export interface CudaExportRef {
  /** The host's name for the export: the producer's ledger name and its export number. */
  readonly key: string;
  /** The extension that made it (its ledger name). */
  readonly producer: string;
  /** Why its memory can no longer be used (its producer stopped), or undefined while it can. */
  readonly gone: string | undefined;
}

/**
 * What the host receives for a torch CUDA tensor when PYISOLATE_ENABLE_CUDA_IPC=1: dtype, shape and device,
 * and the producer's IPC handle. The host never touches the data; passing this object to an extension hands
 * it the same GPU memory. The producing extension keeps the memory until this object and every extension it
 * was passed to let go: call `release()` (or `using`) to let go at once instead of at garbage collection.
 */
export class CudaTensor {
  readonly descriptor: CudaDescriptor;
  readonly #export: CudaExportRef;
  #release: (() => void) | undefined;

  /** @internal Made by the CUDA ledger from a checked descriptor. */
  constructor(descriptor: CudaDescriptor, ref: CudaExportRef, release: (() => void) | undefined) {
    this.descriptor = descriptor;
    this.#export = ref;
    this.#release = release;
  }

  get dtype(): DType {
    return this.descriptor.dtype;
  }

  get shape(): readonly number[] {
    return this.descriptor.shape;
  }

  /** The CUDA device index in the producing process. */
  get device(): number {
    return this.descriptor.storage.device;
  }

  /** The extension whose GPU memory this is. */
  get producer(): string {
    return this.#export.producer;
  }

  /** True after `release()`, and when the memory is gone because its producer stopped. */
  get released(): boolean {
    return this.#release === undefined || this.#export.gone !== undefined;
  }

  /** @internal Why this tensor cannot be sent, or undefined when it can. */
  get unusableBecause(): string | undefined {
    if (this.#export.gone !== undefined) return this.#export.gone;
    return this.#release === undefined ? "this CudaTensor was released" : undefined;
  }

  /** @internal The ledger entry behind it. */
  get exportRef(): CudaExportRef {
    return this.#export;
  }

  /** Lets go of the memory now (the producer frees it once no extension holds it either). Idempotent. */
  release(): void {
    const release = this.#release;
    this.#release = undefined;
    release?.();
  }

  [Symbol.dispose](): void {
    this.release();
  }
}
