"""pyisolate's extension-side API, as the TypeScript host's guest runtime provides it."""

from ._guest.errors import RemoteError
from ._guest.extension import ExtensionBase, ExtensionLocal
from ._guest.protocol import RUNTIME_VERSION as __version__
from ._guest.singleton import ProxiedSingleton, SingletonMetaclass, local_execution
from ._guest.tensors import shared_empty

__all__ = [
    # Extensions
    "ExtensionBase",
    "ExtensionLocal",
    # Host services
    "ProxiedSingleton",
    "SingletonMetaclass",
    "local_execution",
    # Tensors
    "shared_empty",
    # Errors
    "RemoteError",
]
