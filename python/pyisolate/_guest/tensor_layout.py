"""Tensor layout facts both tensor modules share: the wire's dtypes, strides, spans and shm storage entries."""

from __future__ import annotations

from . import segments
from .segments import Segment

DTYPES = frozenset(
    (
        "bool",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "float16",
        "bfloat16",
        "float32",
        "float64",
        "complex64",
        "complex128",
    )
)


def shm_storage(seg: Segment, enc) -> dict:
    """By id when the host already holds the segment (it is kept), else by fd (kept once the fd is sent)."""
    if segments.kept(seg.ino) is seg:
        return {"kind": "shm", "size": seg.size, "id": seg.ino}
    return {"kind": "shm", "fd": enc.add_fd(seg.fd, seg), "size": seg.size, "id": seg.ino}


def segment_descriptor(name: str, shape: list, strides: list, offset: int, seg: Segment, enc) -> dict:
    """A descriptor's layout and storage for a view of `seg`: its first keys, in wire order (the framework and any
    flags follow them, as the host writes them: equal tensors, equal bytes)."""
    return {"dtype": name, "shape": shape, "strides": strides, "offset": offset, "storage": shm_storage(seg, enc)}


def bytes_descriptor(name: str, shape: list, buf, enc) -> dict:
    """A descriptor's layout and storage for data packed in C order in `buf`, sent as an attachment."""
    storage = {"kind": "bytes", "attachment": enc.attach(memoryview(buf))}
    return {"dtype": name, "shape": shape, "strides": contiguous_strides(shape), "offset": 0, "storage": storage}


def element_strides(byte_strides, item: int):
    """Strides in elements, or None when numpy's byte strides cannot be said so (negative, unaligned)."""
    out = []
    for s in byte_strides:
        if s < 0 or s % item:
            return None
        out.append(s // item)
    return out


def span_bytes(shape, strides, item: int) -> int:
    """Bytes from the first element to the end of the last one (strides in elements)."""
    last = 0
    for n, s in zip(shape, strides):
        if n == 0:
            return 0
        last += (n - 1) * s
    return (last + 1) * item


def contiguous_strides(shape) -> list:
    out, step = [], 1
    for n in reversed(shape):
        out.append(step)
        step *= max(n, 1)
    return out[::-1]
