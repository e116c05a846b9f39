// Turns a call's result into one JSON document for `pyisolate run`: tensors as nested arrays (or descriptors).

import { CudaTensor } from "../tensor/cuda.js";
import { Tensor } from "../tensor/tensor.js";

export interface JsonResultOptions {
  /** Tensors as their descriptor (dtype, shape, strides, bytes) instead of their values. */
  raw?: boolean;
}

/**
 * JSON has no NaN, Infinity, bigint or bytes: non-finite numbers become the strings "NaN", "Infinity" and
 * "-Infinity", bigints a number when exact (else a decimal string), bytes `{ "bytes": <base64> }`, a Map an object.
 */
export function toJsonDocument(value: unknown, options: JsonResultOptions = {}): string {
  return JSON.stringify(plain(value, options, 0), null, 2);
}

function plain(value: unknown, options: JsonResultOptions, depth: number): unknown {
  if (depth > 1000) throw new RangeError("the result is nested deeper than 1000 levels");
  switch (typeof value) {
    case "number":
      return Number.isFinite(value) ? value : String(value);
    case "bigint":
      return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
    case "undefined":
    case "function":
    case "symbol":
      return null;
    case "object":
      break;
    default:
      return value;
  }
  if (value === null) return null;
  if (value instanceof Tensor) return options.raw ? tensorDescriptor(value) : tensorValues(value);
  if (value instanceof CudaTensor)
    return { cudaTensor: { dtype: value.dtype, shape: value.shape, device: value.device } };
  if (value instanceof Uint8Array) return { bytes: Buffer.from(value).toString("base64") };
  if (Array.isArray(value)) return value.map((item) => plain(item, options, depth + 1));
  const entries =
    value instanceof Map ? [...value.entries()].map(([k, v]) => [String(k), v] as const) : Object.entries(value);
  const out: Record<string, unknown> = {};
  for (const [key, item] of entries) out[key] = plain(item, options, depth + 1);
  return out;
}

function tensorDescriptor(tensor: Tensor): unknown {
  return {
    tensor: {
      dtype: tensor.dtype,
      shape: tensor.shape,
      strides: tensor.strides,
      nbytes: tensor.nbytes,
      shared: tensor.isShared,
    },
  };
}

/** The elements as nested arrays, in C order; a 0-d tensor is its one value. */
function tensorValues(tensor: Tensor): unknown {
  const index: number[] = [];
  const level = (dim: number): unknown => {
    if (dim === tensor.shape.length) return plain(tensor.at(...index), {}, 0);
    const out: unknown[] = [];
    for (let i = 0; i < tensor.shape[dim]!; i++) {
      index[dim] = i;
      out.push(level(dim + 1));
    }
    return out;
  };
  return level(0);
}
