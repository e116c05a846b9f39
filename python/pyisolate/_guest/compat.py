"""pyisolate 0.10 names whose job this runtime does differently: memory flushes, and the host's own API."""

from __future__ import annotations

import gc

from . import segments

# Names pyisolate exports for the host process. Here the host is the Node package, so extension code
# can import them (a module shared with host code still loads) but any use says where they live.
HOST_ONLY_NAMES = frozenset(("ExtensionManager", "ExtensionManagerConfig", "ExtensionConfig", "SandboxMode"))


def flush_tensor_keeper() -> int:
    """Let go now of the shared segments that nothing in this process uses; return how many went.

    Runs a full garbage collection, so arrays and tensors caught in reference cycles are freed at once and
    their segments unmapped; the host is told (one `release` message on the next turn of the event loop).
    Segments the host still holds are kept, whatever this returns: they stay mapped until the host releases
    them (docs/tensors.md, "Lifetime"), since the host may send them back by id alone. Nothing the host
    needs is dropped, so this is always safe to call, from any thread.
    """
    before = segments.live_count()
    gc.collect()
    return max(0, before - segments.live_count())


_adapter = None


def register_adapter(adapter) -> None:
    """Keep `adapter` for `get_adapter()` in this process. pyisolate's host reads its adapter to configure
    extensions; ours is configured in TypeScript and never consults it, so this only answers `get_adapter()`.
    """
    global _adapter
    _adapter = adapter


def get_adapter():
    """The adapter `register_adapter()` kept in this process, or None (our host registers none)."""
    return _adapter


def purge_orphan_sender_shm_files(min_age_seconds: float = 1.0, force: bool = False) -> int:
    """Return 0: this runtime never names shared memory in /dev/shm, so there are no orphan files to remove.

    Segments are anonymous memfds (or unlinked files), which the kernel frees with their last holder, even
    after a crash. The arguments are accepted for pyisolate compatibility and ignored.
    """
    return 0


class _HostOnlyMeta(type):
    def __call__(cls, *args, **kwargs):
        raise RuntimeError(_host_only_message(cls.__name__))

    def __getattr__(cls, name):
        if name.startswith("_"):
            raise AttributeError(name)
        raise RuntimeError(_host_only_message(cls.__name__))


def _host_only_message(name: str) -> str:
    return (
        f"pyisolate.{name} belongs to the host, which here is the Node.js package `pyisolate` "
        f"(ExtensionManager in TypeScript); extension code cannot use it. See docs/compat.md"
    )


def host_only(name: str) -> type:
    """A stand-in for the host name `name`: importable, and a RuntimeError on any use."""
    return _HostOnlyMeta(name, (), {"__module__": "pyisolate", "__doc__": _host_only_message(name)})
