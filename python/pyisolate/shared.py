"""Import path kept for pyisolate compatibility (`from pyisolate.shared import ExtensionBase`)."""

from ._guest.extension import ExtensionBase, ExtensionLocal
from ._guest.singleton import ProxiedSingleton

__all__ = ["ExtensionBase", "ExtensionLocal", "ProxiedSingleton"]
