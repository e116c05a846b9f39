"""Import path kept for pyisolate compatibility (`from pyisolate.sealed import SealedNodeExtension`)."""

from ._guest.sealed import SealedNodeExtension

__all__ = ["SealedNodeExtension"]
