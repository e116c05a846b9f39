"""torch CUDA tensors as IPC handles (PYISOLATE_ENABLE_CUDA_IPC=1): the host forwards them untouched.

The producer's torch keeps the storage alive until every consumer dropped its tensor (torch's CUDA IPC
reference counter, which `_share_cuda_` sets up); consumers open the handle with `_new_shared_cuda`.
"""

from __future__ import annotations

import os
import weakref

# Storages this process shared, by IPC handle: a tensor that comes back here (A -> host -> A) is rebuilt
# over its own storage, since CUDA cannot open an IPC handle in the process that made it.
_shared_here: "weakref.WeakValueDictionary[str, object]" = weakref.WeakValueDictionary()


def encode(torch, t, name: str) -> dict:
    storage = t.untyped_storage()
    (device, handle, size, storage_offset, ref_handle, ref_offset, event, sync) = storage._share_cuda_()
    item = t.element_size()
    _shared_here[bytes(handle).hex()] = t
    desc = {
        "dtype": name, "shape": list(t.shape), "strides": list(t.stride()),
        "offset": t.storage_offset() * item, "framework": "torch",
        "storage": {"kind": "cuda", "device": int(device), "size": int(size), "ipc": {
            "handle": bytes(handle).hex(), "storageOffset": int(storage_offset),
            "refCounter": bytes(ref_handle).hex(), "refCounterOffset": int(ref_offset),
            "event": bytes(event).hex() if event else "", "eventSyncRequired": bool(sync),
            "cuda": torch.version.cuda, "pid": os.getpid(),
        }},
    }
    if t.requires_grad:
        desc["requiresGrad"] = True
    return desc


def decode(desc: dict):
    """The producer's CUDA tensor, mapped here; RuntimeError (not a crash) when this process cannot open it."""
    try:
        import torch
    except ImportError:
        raise RuntimeError("a CUDA tensor arrived but torch is not installed in this extension") from None
    storage = desc["storage"]
    ipc = storage["ipc"]
    if not torch.cuda.is_available():
        raise RuntimeError("a CUDA tensor arrived but this process sees no CUDA device")
    if ipc.get("cuda") != torch.version.cuda:
        raise RuntimeError(f"a CUDA tensor from a torch built for CUDA {ipc.get('cuda')} cannot be opened by "
                           f"this torch (CUDA {torch.version.cuda})")
    device = storage["device"]
    if device >= torch.cuda.device_count():
        raise RuntimeError(f"a CUDA tensor on device {device} arrived, but this process sees "
                           f"{torch.cuda.device_count()} device(s)")
    dtype = getattr(torch, desc["dtype"])
    item = torch.empty((), dtype=dtype).element_size()
    if ipc.get("pid") == os.getpid():
        return _rebuild_local(torch, desc, dtype, item)
    with torch.cuda.device(device):
        shared = torch.UntypedStorage._new_shared_cuda(
            device, bytes.fromhex(ipc["handle"]), storage["size"], ipc["storageOffset"],
            bytes.fromhex(ipc["refCounter"]), ipc["refCounterOffset"],
            bytes.fromhex(ipc["event"]) if ipc["event"] else None, ipc["eventSyncRequired"])
        t = torch.empty(0, dtype=dtype, device=f"cuda:{device}")
        t.set_(shared, desc["offset"] // item, desc["shape"], desc["strides"])
    if desc.get("requiresGrad"):
        t.requires_grad_(True)
    return t


def _rebuild_local(torch, desc: dict, dtype, item: int):
    """A tensor this process shared came back: a view over the same storage, no IPC involved."""
    original = _shared_here.get(desc["storage"]["ipc"]["handle"])
    if original is None:
        raise RuntimeError("a CUDA tensor came back to the process that made it, but its storage is gone")
    t = torch.empty(0, dtype=dtype, device=original.device)
    t.set_(original.untyped_storage(), desc["offset"] // item, desc["shape"], desc["strides"])
    if desc.get("requiresGrad"):
        t.requires_grad_(True)
    return t
