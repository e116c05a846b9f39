// A CUDA tensor seen from the host: an opaque torch IPC handle that can only be forwarded to another extension.

import { validateDescriptor, type CudaStorage, type TensorDescriptor } from "./descriptor.js";
import type { DType } from "./dtype.js";

/**
 * What the host receives for a torch CUDA tensor when PYISOLATE_ENABLE_CUDA_IPC=1: dtype, shape and device,
 * and the producer's IPC handle. The host never touches the data; passing this object to an extension hands
 * it the same GPU memory. The producing extension keeps the storage alive until every consumer released it.
 */
export class CudaTensor {
  readonly descriptor: TensorDescriptor & { storage: CudaStorage };

  /** @internal Made by the codec from a checked descriptor. */
  constructor(descriptor: TensorDescriptor & { storage: CudaStorage }) {
    this.descriptor = descriptor;
  }

  /** A CudaTensor when `payload` is a valid CUDA descriptor, undefined when it is some other storage. */
  static fromPayload(payload: unknown): CudaTensor | undefined {
    const storage = (payload as { storage?: { kind?: unknown } } | null)?.storage;
    if (storage?.kind !== "cuda") return undefined;
    const { descriptor } = validateDescriptor(payload, { fdCount: 0, attachmentSizes: [] });
    return new CudaTensor(descriptor as TensorDescriptor & { storage: CudaStorage });
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
}
