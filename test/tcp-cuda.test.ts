// CUDA tensors on the TCP transport: refused with a TypeError that says why, on the host's side of the link.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CUDA_OVER_TCP } from "../src/remote/local-tcp.js";
import { CudaLedger, type CudaPeer } from "../src/tensor/cuda-ledger.js";
import { TensorLink } from "../src/tensor/link.js";
import { ProtocolError } from "../src/errors.js";

const producer: CudaPeer = { holder: "gpu guest", releaseExports: () => {} };
const descriptor = {
  dtype: "float32",
  shape: [4],
  strides: [1],
  offset: 0,
  framework: "torch",
  storage: {
    kind: "cuda",
    device: 0,
    size: 16,
    ipc: {
      handle: "ab".repeat(64),
      storageOffset: 0,
      event: "",
      eventSyncRequired: false,
      cuda: "13.0",
      origin: "p",
      export: 1,
    },
  },
};
const context = { attach: () => 0, addFd: () => 0 } as never;
const decodeContext = {
  attachments: [],
  takeFds: () => [],
  attachment: () => new Uint8Array(0),
  decode: (v: unknown) => v,
  frameState: <T>(_key: object, make: () => T) => make(),
} as never;

describe("a TCP link's tensor codec", () => {
  it("refuses to send a CUDA tensor with a TypeError that names the transport and the way out", () => {
    const cuda = new CudaLedger().received(structuredClone(descriptor), producer);
    const codec = new TensorLink("copy", "tcp_cuda", {}, undefined, CUDA_OVER_TCP).codec();
    assert.throws(
      () => codec.encode(cuda, context),
      (e: unknown) => e instanceof TypeError && /TCP transport/.test(e.message) && /\.cpu\(\)/.test(e.message),
    );
  });

  it("refuses a CUDA descriptor from the other side as a protocol error", () => {
    const codec = new TensorLink("copy", "tcp_cuda", {}, undefined, CUDA_OVER_TCP).codec();
    assert.throws(
      () => codec.decode(structuredClone(descriptor), decodeContext),
      (e: unknown) => e instanceof ProtocolError && /TCP transport/.test(e.message),
    );
  });
});
