"""Tensors for a process with neither torch nor numpy: pyisolate 0.10's plain "TensorValue" dict, both ways.

A `$tensor` the host sends to such a worker arrives as `{"__type__": "TensorValue", "dtype": "torch.float32",
"tensor_size": [2, 2], "requires_grad": False, "data": [[1.0, 2.0], [3.0, 4.0]]}` (the form pyisolate's sealed
workers see), and that dict sent back travels as a `$tensor` again, so the host gets a tensor, as pyisolate's does.
Only `struct` is used: it is slow for big tensors, which is why it is the last resort.
"""

from __future__ import annotations

import struct

from .framing import naturals

TYPE_NAME = "TensorValue"
# Our dtype names -> a struct code per element; bfloat16 and the complex types are read by hand below.
_CODES = {
    "bool": "?",
    "int8": "b",
    "uint8": "B",
    "int16": "h",
    "uint16": "H",
    "int32": "i",
    "uint32": "I",
    "int64": "q",
    "uint64": "Q",
    "float16": "e",
    "float32": "f",
    "float64": "d",
    "bfloat16": "H",
    "complex64": "ff",
    "complex128": "dd",
}


class TensorValue(dict):
    """pyisolate's JSON form of a tensor; a plain dict to the extension (`isinstance(x, dict)`, `x["data"]`)."""


def from_buffer(desc: dict, buffer) -> TensorValue:
    """The TensorValue of a checked `$tensor` descriptor over `buffer` (strides and offset in elements)."""
    name = desc["dtype"]
    code = "<" + _CODES[name]
    item = _item(name)
    view = memoryview(buffer).cast("B")
    shape, strides = desc["shape"], desc["strides"]

    def element(index: int):
        try:
            raw = struct.unpack_from(code, view, index * item)
        except struct.error:
            raise ValueError(f"$tensor reaches past its {len(view)} bytes of storage") from None
        if name == "bfloat16":
            return struct.unpack("<f", struct.pack("<I", raw[0] << 16))[0]
        return complex(*raw) if name.startswith("complex") else raw[0]

    def walk(dim: int, base: int):
        if dim == len(shape):
            return element(base)
        return [walk(dim + 1, base + i * strides[dim]) for i in range(shape[dim])]

    return TensorValue(
        __type__=TYPE_NAME,
        dtype="torch." + name,
        tensor_size=list(shape),
        requires_grad=desc.get("requiresGrad") is True,
        data=walk(0, desc["offset"]),
    )


def _item(name: str) -> int:
    return struct.calcsize("<" + _CODES[name])


def encode(value: TensorValue, enc):
    """The `$tensor` tag for a TensorValue (the data packed contiguously, sent as bytes); TypeError if malformed."""
    dtype, shape, data = value.get("dtype"), value.get("tensor_size"), value.get("data")
    name = dtype[len("torch.") :] if isinstance(dtype, str) and dtype.startswith("torch.") else None
    if name not in _CODES or type(shape) is not list or not naturals(shape):
        raise TypeError(
            f"cannot send this TensorValue: dtype {dtype!r} and tensor_size {shape!r} do not describe a tensor"
        )
    flat = []
    _flatten(data, len(shape), flat)
    count = 1
    for n in shape:
        count *= n
    if len(flat) != count:
        raise TypeError(f"cannot send this TensorValue: {len(flat)} values for tensor_size {shape}")
    buf = bytearray(count * _item(name))
    code = "<" + _CODES[name]
    for i, x in enumerate(flat):
        if name == "bfloat16":
            x = struct.unpack("<I", struct.pack("<f", x))[0] >> 16
        struct.pack_into(code, buf, i * _item(name), *((x.real, x.imag) if name.startswith("complex") else (x,)))
    strides, stride = [], 1
    for n in reversed(shape):
        strides.insert(0, stride)
        stride *= n
    return enc.tag(
        "$tensor",
        {
            "dtype": name,
            "shape": list(shape),
            "strides": strides,
            "offset": 0,
            "storage": {"kind": "bytes", "attachment": enc.attach(memoryview(buf))},
            "framework": "torch",
        },
    )


def _flatten(data, depth: int, out: list) -> None:
    if depth == 0:
        out.append(data)
        return
    if type(data) is not list:
        raise TypeError("cannot send this TensorValue: its data is not nested lists as deep as tensor_size")
    for item in data:
        _flatten(item, depth - 1, out)
