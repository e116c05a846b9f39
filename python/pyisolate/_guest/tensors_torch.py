"""torch tensors as `$tensor` descriptors (torch itself is imported only when a torch tensor arrives or is made here)."""

from __future__ import annotations

import os
import warnings

from . import segments
from .tensor_layout import DTYPES, bytes_descriptor, contiguous_strides, segment_descriptor, span_bytes

CUDA_IPC_ENV = "PYISOLATE_ENABLE_CUDA_IPC"
_CUDA_REFUSE_ENV = "PYISOLATE_CUDA_REFUSE"  # set by the host on the TCP transport (src/remote/local-tcp.ts)
_warned_cuda_copy = False
# Per dtype, worked out once: a call that sends or receives a tensor otherwise pays for str(dtype), or for a
# throwaway tensor to learn the item size, each time (measurable on a 4 KB round trip).
_NAMES = {}
_ITEM_SIZES = {}


def _name(torch, dtype) -> str:
    name = _NAMES.get(dtype)
    if name is None:
        name = str(dtype).rpartition(".")[2]
        if name not in DTYPES:
            raise TypeError(f"cannot send a torch tensor of dtype {dtype} to the host")
        _NAMES[dtype] = name
    return name


def encode(torch, t, enc, shm: bool) -> dict:
    if t.layout != torch.strided or t.is_quantized:
        raise TypeError(f"cannot send a torch tensor with layout {t.layout} (only dense tensors travel)")
    device = None
    if t.device.type == "cuda":
        if os.environ.get(_CUDA_REFUSE_ENV) == "1":
            raise TypeError(
                "CUDA tensors cannot cross the TCP transport (tensors travel by value, and a CUDA IPC handle "
                "opens only on its own machine): copy it to the CPU first (.cpu())"
            )
        if os.environ.get(CUDA_IPC_ENV) == "1" and t.untyped_storage().nbytes() > 0:
            from . import tensors_cuda

            return tensors_cuda.encode(torch, t, _name(torch, t.dtype))
        _warn_cuda_copy()
        device = str(t.device)
        t = t.cpu()
    elif t.device.type != "cpu":
        raise TypeError(f"cannot send a torch tensor on device {t.device}")
    requires_grad = t.requires_grad
    if requires_grad:
        t = t.detach()
    if t.is_conj():
        t = t.resolve_conj()
    if t.is_neg():
        t = t.resolve_neg()
    desc = _placed(torch, t, _name(torch, t.dtype), enc, shm)
    # The optional keys after the layout and storage, as the host writes them: equal tensors, equal bytes.
    desc["framework"] = "torch"
    if requires_grad:
        desc["requiresGrad"] = True
    if device is not None:
        desc["device"] = device
    return desc


def _placed(torch, t, name: str, enc, shm: bool) -> dict:
    """The descriptor's layout and storage (its first keys): a segment's view or a copy into one, else bytes."""
    item = t.element_size()
    numel = t.numel()
    if numel == 0 or not shm:
        return _bytes(torch, t, name, enc)
    strides = list(t.stride())
    address = t.data_ptr()  # the first element's address: the storage's plus the offset
    seg = segments.containing(address, span_bytes(t.shape, strides, item)) if min(strides, default=0) >= 0 else None
    if seg is None:  # an ordinary tensor: one copy into a fresh segment
        try:
            seg = segments.allocate(numel * item)
        except OSError:
            return _bytes(torch, t, name, enc)
        torch.frombuffer(seg, dtype=t.dtype, count=numel).view(t.shape).copy_(t)
        strides, address = contiguous_strides(t.shape), seg.address
    return segment_descriptor(name, list(t.shape), strides, address - seg.address, seg, enc)


def _bytes(torch, t, name: str, enc) -> dict:
    numel = t.numel()
    buf = bytearray(numel * t.element_size())
    if numel:
        torch.frombuffer(buf, dtype=t.dtype, count=numel).view(t.shape).copy_(t)
    return bytes_descriptor(name, list(t.shape), buf, enc)


def _warn_cuda_copy() -> None:
    global _warned_cuda_copy
    if not _warned_cuda_copy:
        _warned_cuda_copy = True
        warnings.warn(
            f"a CUDA tensor is copied to host memory to cross processes (set {CUDA_IPC_ENV}=1 "
            f"to pass CUDA IPC handles instead)",
            stacklevel=4,
        )


def decode(desc: dict, buffer):
    import torch

    dtype = getattr(torch, desc["dtype"])
    shape, strides, offset = desc["shape"], desc["strides"], desc["offset"]
    item = _item_size(torch, dtype)
    if 0 in shape:  # ints only (tensors._check)
        t = torch.empty(shape, dtype=dtype)
    else:
        base = torch.frombuffer(buffer, dtype=dtype, count=len(buffer) // item)
        t = base.as_strided(shape, strides, offset // item)
    device = desc.get("device")
    if device is not None and device != "cpu":
        if torch.cuda.is_available():
            t = t.to(device)
        else:
            warnings.warn(f"a tensor from {device} stays on the CPU: this process sees no CUDA device", stacklevel=2)
    if desc.get("requiresGrad"):
        t.requires_grad_(True)
    return t


def _item_size(torch, dtype) -> int:
    size = _ITEM_SIZES.get(dtype)
    if size is None:
        size = _ITEM_SIZES[dtype] = torch.empty((), dtype=dtype).element_size()
    return size


def shared_empty(shape, dtype):
    import torch

    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    numel = 1
    for n in shape:
        numel *= n
    item = _item_size(torch, dtype)
    if numel == 0:
        return torch.empty(shape, dtype=dtype)
    try:
        seg = segments.allocate(numel * item)
    except OSError:
        return torch.zeros(shape, dtype=dtype)
    return torch.frombuffer(seg, dtype=dtype, count=numel).view(shape)
