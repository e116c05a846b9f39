"""What the Landlock tests share: the guest folder, the helper module loaded by path as the launcher does, the ABI,
the folders a confined Python must read, and a planted secret."""

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

# What a confined child Python must be able to read to start at all: its own install and the system libraries.
PYTHON_PREFIXES = sorted({os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), "/usr", "/lib", "/lib64"})

SECRET = "top secret"


def plant_secret(home):
    """Write a secret file under `home` (which must exist) for a confined child to try to read; returns its path."""
    path = os.path.join(home, "secret.txt")
    with open(path, "w") as f:
        f.write(SECRET)
    return path
