"""What the Landlock tests share: the guest folder, the helper module loaded by path as the launcher does, the ABI."""

import os
import sys

GUEST_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pyisolate", "_guest")
sys.path.insert(0, GUEST_DIR)
try:
    import landlock  # noqa: E402  (by path, as confine_exec.py and the confined child load it)
finally:
    sys.path.remove(GUEST_DIR)

try:
    ABI = landlock.abi_version()
    WHY = ""
except OSError as exc:  # pragma: no cover - depends on the kernel
    ABI = 0
    WHY = str(exc)
