"""Sets the kernel's per-process limits the host asked for, in the guest, before any extension code runs.

The host sends ``PYISOLATE_RLIMITS`` (JSON: resource name -> [soft, hard], see src/limits/rlimits.ts). Only the names
below are taken; a limit is only ever lowered, never raised past what the guest already has, so the variable cannot
widen anything. Every process the extension starts inherits them.
"""

import json
import os

__all__ = ["RLIMITS_ENV", "apply", "from_env"]

RLIMITS_ENV = "PYISOLATE_RLIMITS"
_KNOWN = ("RLIMIT_DATA", "RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_NOFILE", "RLIMIT_FSIZE", "RLIMIT_NPROC")


def _lower(wanted, current):
    """The smaller of two rlimit values, where RLIM_INFINITY is the largest."""
    import resource

    if current == resource.RLIM_INFINITY:
        return wanted
    return min(wanted, current)


def apply(limits):
    """Lower each named limit to [soft, hard]; raises ValueError on a name or value it does not know."""
    import resource

    for name, pair in limits.items():
        if name not in _KNOWN or not hasattr(resource, name):
            raise ValueError("unknown rlimit %r" % (name,))
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in pair)
        ):
            raise ValueError("rlimit %s must be [soft, hard] non-negative integers" % name)
        which = getattr(resource, name)
        old_soft, old_hard = resource.getrlimit(which)
        hard = _lower(pair[1], old_hard)  # finite: pair[1] is
        soft = min(_lower(pair[0], old_soft), hard)
        resource.setrlimit(which, (soft, hard))


def from_env():
    """Apply the limits the host named, if any; returns whether there were some."""
    text = os.environ.pop(RLIMITS_ENV, None)
    if not text:
        return False
    limits = json.loads(text)
    if not isinstance(limits, dict):
        raise ValueError("%s must hold a JSON object" % RLIMITS_ENV)
    apply(limits)
    return True
