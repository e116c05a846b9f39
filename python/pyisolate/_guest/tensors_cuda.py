"""torch CUDA tensors as IPC handles (PYISOLATE_ENABLE_CUDA_IPC=1): the host forwards them untouched.

How long the GPU memory lives is the host's ledger's call (src/tensor/cuda-ledger.ts), not torch's IPC
counter. torch keeps that counter in a shared-memory file of the producer, which a consumer in another
sandbox (its own /dev/shm) cannot open, and it counts one consumer per `_share_cuda_()`, so a handle the
host forwards twice, or drops without forwarding, would free the memory too soon or never. Instead:
- the producer keeps every storage it sends (`_exports`) until the host's `release` names it, and hands
  torch's count back at once, so that the memory is freed as soon as the last reference goes;
- a consumer opens the handle with a counter name that does not exist (torch's decrement at free is
  best effort and finds nothing) and tells the host, by the host's key, when its storage is freed;
- a consumer that sends such a tensor on sends the producer's handle and the host's key again (torch
  refuses to share a storage it received).
"""

from __future__ import annotations

import atexit
import functools
import itertools
import os
import weakref

from .release_batch import ReleaseBatch

# Names this process in descriptors: pids repeat across sandboxes, each of which has its own pid namespace.
ORIGIN = os.urandom(8).hex()
# Never created: a consumer's storage, when freed, finds no counter to decrement (see the module text).
_NO_COUNTER = b"/pyisolate-no-ipc-counter"


@functools.lru_cache(maxsize=1)  # read on first use: every guest imports this module, few send CUDA tensors
def pid_namespace():
    """This process's PID namespace ("pid:[inode]"), or None where /proc cannot say.

    Legacy CUDA IPC handles cannot be opened across PID namespaces (NVIDIA's and UCX's words; bwrap gives each
    extension its own), so a descriptor says where it was made, for a clear error when opening fails.
    """
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


_exports: dict = {}  # export id -> storage sent from here, kept until the host releases it
_next_export = itertools.count(1)
_imported: dict = {}  # data_ptr of a storage opened here -> its live _Import records
# Host keys of opened storages that were freed (one entry per opening): the host counts them.
releases = ReleaseBatch(dedupe=False)


class _Import:
    __slots__ = ("key", "storage", "__weakref__")

    def __init__(self, key: str, storage: dict) -> None:
        self.key = key
        self.storage = storage


def encode(torch, t, name: str) -> dict:
    storage = t.untyped_storage()
    desc = {
        "dtype": name,
        "shape": list(t.shape),
        "strides": list(t.stride()),
        "offset": t.storage_offset() * t.element_size(),
        "storage": _storage_of(torch, storage),
        "framework": "torch",
    }
    if t.requires_grad:
        desc["requiresGrad"] = True
    return desc


def _storage_of(torch, storage) -> dict:
    imported = _imported.get(storage.data_ptr())
    if imported:
        return imported[-1].storage  # it came from another extension: its producer's handle, the host's key
    (device, handle, size, storage_offset, ref, ref_offset, event, sync) = storage._share_cuda_()
    # Hand back the count `_share_cuda_` took: `_exports` keeps the storage alive instead (see the module text).
    torch.UntypedStorage._release_ipc_counter_cuda(ref, ref_offset)
    export = next(_next_export)
    _exports[export] = storage
    return {
        "kind": "cuda",
        "device": int(device),
        "size": int(size),
        "ipc": {
            "handle": bytes(handle).hex(),
            "storageOffset": int(storage_offset),
            "event": bytes(event).hex() if event else "",
            "eventSyncRequired": bool(sync),
            "cuda": torch.version.cuda,
            "origin": ORIGIN,
            "export": export,
            "pidns": pid_namespace(),
        },
    }


@atexit.register
def _release_all_exports() -> None:
    """At exit, free what only the host still held: torch warns about storages it shared that are still alive."""
    _exports.clear()


def release_exports(ids) -> None:
    """The host and every consumer let go of these exports: drop our references (the memory goes with the last)."""
    for export in ids:
        if type(export) is int:
            _exports.pop(export, None)


def decode(desc: dict):
    """The producer's CUDA tensor, mapped here; RuntimeError (not a crash) when this process cannot open it."""
    ipc = desc["storage"]["ipc"]
    if ipc.get("origin") == ORIGIN:
        return _rebuild_local(desc)
    key = ipc.get("key")
    if type(key) is not str:
        raise ValueError("a CUDA tensor from another process needs the host's key")
    try:
        return _open(desc, key)
    except BaseException:
        releases.add(key)  # the host counted this delivery: it is over
        raise


def _torch_for(desc: dict):
    try:
        import torch
    except ImportError:
        raise RuntimeError("a CUDA tensor arrived but torch is not installed in this extension") from None
    ipc = desc["storage"]["ipc"]
    if not torch.cuda.is_available():
        raise RuntimeError("a CUDA tensor arrived but this process sees no CUDA device")
    if ipc.get("cuda") != torch.version.cuda:
        raise RuntimeError(
            f"a CUDA tensor from a torch built for CUDA {ipc.get('cuda')} cannot be opened by "
            f"this torch (CUDA {torch.version.cuda})"
        )
    device = desc["storage"]["device"]
    if device >= torch.cuda.device_count():
        raise RuntimeError(
            f"a CUDA tensor on device {device} arrived, but this process sees {torch.cuda.device_count()} device(s)"
        )
    return torch


def _open(desc: dict, key: str):
    torch = _torch_for(desc)
    storage, ipc = desc["storage"], desc["storage"]["ipc"]
    device = storage["device"]
    try:
        with torch.cuda.device(device):
            shared = torch.UntypedStorage._new_shared_cuda(
                device,
                bytes.fromhex(ipc["handle"]),
                storage["size"],
                ipc["storageOffset"],
                _NO_COUNTER,
                0,
                bytes.fromhex(ipc["event"]) if ipc["event"] else b"",
                bool(ipc["eventSyncRequired"]),
            )
    except RuntimeError as e:
        hint = cross_namespace_hint(ipc)
        if hint is None:
            raise
        raise RuntimeError(f"{e}\n{hint}") from e
    record = _Import(key, storage)
    ptr = shared.data_ptr()
    _imported.setdefault(ptr, []).append(record)
    # torch keeps one Python object per storage alive as long as the storage (views, `set_` included), so
    # this runs when the memory is really no longer used here.
    weakref.finalize(shared, _freed, ptr, record)
    return _view(torch, desc, shared)


def cross_namespace_hint(ipc: dict):
    """Why opening may have failed when the producer is in another PID namespace, or None when it is not."""
    theirs = ipc.get("pidns")
    ours = pid_namespace()
    if not theirs or not ours or theirs == ours:
        return None
    return (
        f"the producing extension runs in another PID namespace ({theirs}, here {ours}): legacy CUDA "
        "IPC handles cannot cross PID namespaces, and the bwrap sandbox gives each extension its own. Run the "
        'extensions that share CUDA tensors with sandbox backend "landlock" (or without '
        "PYISOLATE_ENABLE_CUDA_IPC, which copies through the host)."
    )


def _freed(ptr: int, record: _Import) -> None:
    records = _imported.get(ptr)
    if records is not None:
        records[:] = [r for r in records if r is not record]
        if not records:
            del _imported[ptr]
    releases.add(record.key)


def _rebuild_local(desc: dict):
    """A tensor this process sent came back: a view over its own storage (CUDA cannot open its own handle)."""
    storage = _exports.get(desc["storage"]["ipc"].get("export"))
    if storage is None:
        raise RuntimeError("a CUDA tensor came back to the process that made it, but the host had released it")
    import torch

    return _view(torch, desc, storage)


def _view(torch, desc: dict, storage):
    dtype = getattr(torch, desc["dtype"])
    item = torch.empty((), dtype=dtype).element_size()
    t = torch.empty(0, dtype=dtype, device=storage.device)
    t.set_(storage, desc["offset"] // item, desc["shape"], desc["strides"])
    if desc.get("requiresGrad"):
        t.requires_grad_(True)
    return t


def exported_count() -> int:
    """Storages kept for the host now (for tests)."""
    return len(_exports)


def imported_count() -> int:
    """Storages opened from other processes and still alive here (for tests)."""
    return sum(len(records) for records in _imported.values())
