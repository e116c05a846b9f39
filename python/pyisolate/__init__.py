"""pyisolate's extension-side API, as the TypeScript host's guest runtime provides it."""

from ._guest.compat import (
    HOST_ONLY_NAMES,
    flush_tensor_keeper,
    get_adapter,
    host_only,
    purge_orphan_sender_shm_files,
    register_adapter,
)
from ._guest.errors import RemoteError
from ._guest.extension import ExtensionBase, ExtensionLocal
from ._guest.protocol import RUNTIME_VERSION as __version__  # noqa: F401 -- the package version, read as pyisolate.__version__
from ._guest.sealed import SealedNodeExtension
from ._guest.service_stream import ServiceStream
from ._guest.singleton import ProxiedSingleton, SingletonMetaclass, local_execution, singleton_scope
from ._guest.tensors import shared_empty

__all__ = [
    # Extensions
    "ExtensionBase",
    "ExtensionLocal",
    "SealedNodeExtension",
    # Host services
    "ProxiedSingleton",
    "ServiceStream",
    "SingletonMetaclass",
    "local_execution",
    "singleton_scope",
    # Tensors
    "shared_empty",
    "flush_tensor_keeper",
    "purge_orphan_sender_shm_files",
    # Host-application adapters (kept in-process; our host never consults one)
    "register_adapter",
    "get_adapter",
    # Errors
    "RemoteError",
]


def __getattr__(name: str):
    # pyisolate's host-side names import (code shared with a host still loads) and fail on use.
    if name in HOST_ONLY_NAMES:
        stand_in = globals()[name] = host_only(name)
        return stand_in
    raise AttributeError(f"module 'pyisolate' has no attribute {name!r}")
