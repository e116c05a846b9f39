"""Drop every Linux capability for good, before any extension code runs: stdlib ctypes only.

Landlock confines files and TCP but leaves root root: ``CAP_SYS_RESOURCE``, ``CAP_NET_ADMIN``, ``CAP_SYS_ADMIN`` and
the rest stay usable on whatever Landlock does not police (limits, interfaces, BPF, the kernel log, device nodes).
``drop_all()`` empties the effective, permitted and inheritable sets, the ambient set and, when the process may
(``CAP_SETPCAP``), the bounding set; locks the securebits so that uid 0 never regains capabilities through
``execve`` or a uid change; and sets ``no_new_privs``. An unprivileged process has nothing to drop but cannot empty
its bounding set either (that needs ``CAP_SETPCAP``): with ``no_new_privs`` nothing it executes can gain from it.
"""

import ctypes
import errno
import os

__all__ = ["current", "drop_all"]

_PR_CAPBSET_READ = 23
_PR_CAPBSET_DROP = 24
_PR_SET_SECUREBITS = 28
_PR_GET_SECUREBITS = 27
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_CAP_SETPCAP = 8
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

# NOROOT: uid 0 gets no capabilities at execve. NO_SETUID_FIXUP: a uid change neither adds nor removes any.
# KEEP_CAPS stays off. NO_CAP_AMBIENT_RAISE: nothing can enter the ambient set. Each with its lock bit.
SECUREBITS_LOCKED = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 3) | (1 << 5) | (1 << 6) | (1 << 7)


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.restype = ctypes.c_int
    return libc


def _fail(what):
    err = ctypes.get_errno()
    raise OSError(err, "dropping capabilities: %s failed: %s" % (what, os.strerror(err)))


def current():
    """This process's (effective, permitted, inheritable, bounding, securebits), each sets as a 64-bit mask."""
    libc = _libc()
    header, data = _Header(_LINUX_CAPABILITY_VERSION_3, 0), (_Data * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        _fail("capget")

    def join(field):
        return getattr(data[0], field) | (getattr(data[1], field) << 32)

    bounding = 0
    for cap in range(64):
        r = libc.prctl(_PR_CAPBSET_READ, cap, 0, 0, 0)
        if r < 0:
            break  # EINVAL: past the kernel's last capability
        bounding |= r << cap
    return (
        join("effective"),
        join("permitted"),
        join("inheritable"),
        bounding,
        libc.prctl(_PR_GET_SECUREBITS, 0, 0, 0, 0),
    )


def drop_all():
    """Drop every capability of this process (and so of all it starts) for good; returns ``current()`` after.

    Raises OSError when a capability that the process holds cannot be dropped: the caller must not run anything.
    """
    libc = _libc()
    effective = current()[0]
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        _fail("prctl(PR_SET_NO_NEW_PRIVS)")
    if effective & (1 << _CAP_SETPCAP):
        # Both need CAP_SETPCAP, so they come before the sets are emptied.
        if libc.prctl(_PR_SET_SECUREBITS, SECUREBITS_LOCKED, 0, 0, 0) != 0:
            _fail("prctl(PR_SET_SECUREBITS)")
        for cap in range(64):
            if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                if ctypes.get_errno() == errno.EINVAL:
                    break  # past the kernel's last capability
                _fail("prctl(PR_CAPBSET_DROP, %d)" % cap)
    # EINVAL: a kernel before 4.3 has no ambient set to clear.
    if libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 and ctypes.get_errno() != errno.EINVAL:
        _fail("prctl(PR_CAP_AMBIENT_CLEAR_ALL)")
    header, data = _Header(_LINUX_CAPABILITY_VERSION_3, 0), (_Data * 2)()
    if libc.capset(ctypes.byref(header), data) != 0:
        _fail("capset")
    after = current()
    if after[0] or after[1] or after[2]:
        raise OSError(errno.EPERM, "dropping capabilities: the kernel still reports some: %r" % (after[:3],))
    return after
