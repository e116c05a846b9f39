"""Import path kept for pyisolate compatibility: its host-side configuration types (`from pyisolate.config import ...`).

The host here is the Node.js package, configured in TypeScript: these names import (a module shared with host code,
or type hints, still load) and any use says where they live, like the same names on `pyisolate` itself.
"""

from . import ExtensionConfig, ExtensionManagerConfig, SandboxMode  # the same stand-ins as `pyisolate.<name>`
from ._guest.compat import host_only

SandboxConfig = host_only("SandboxConfig")
CUDAWheelConfig = host_only("CUDAWheelConfig")

__all__ = ["ExtensionConfig", "ExtensionManagerConfig", "SandboxMode", "SandboxConfig", "CUDAWheelConfig"]
