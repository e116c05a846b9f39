"""Landlock self-confinement for the guest: stdlib ctypes only, applied before any extension code runs.

``confine(read_only, writable, allow_network)`` sets ``no_new_privs`` and restricts this process (and every
process it starts) to the listed paths. No rule grants making device nodes. Everything the kernel's Landlock ABI can police and the lists do not
grant is denied: reads, writes, executes, directory listing, renames across folders, truncation and, with
ABI 4 or newer, TCP bind and connect; with ABI 6 or newer, signals and abstract Unix sockets that reach
outside this process's Landlock domain.
"""

import ctypes
import errno
import os
import stat

__all__ = ["abi_version", "confine"]

# Syscall numbers: the same on every architecture since Landlock arrived (5.13).
_SYS_CREATE_RULESET = 444
_SYS_ADD_RULE = 445
_SYS_RESTRICT_SELF = 446
_CREATE_RULESET_VERSION = 1 << 0
_PR_SET_NO_NEW_PRIVS = 38
_RULE_PATH_BENEATH = 1

# Filesystem rights, with the ABI that introduced each.
_EXECUTE = 1 << 0
_WRITE_FILE = 1 << 1
_READ_FILE = 1 << 2
_READ_DIR = 1 << 3
_REMOVE_DIR = 1 << 4
_REMOVE_FILE = 1 << 5
_MAKE_CHAR = 1 << 6
_MAKE_DIR = 1 << 7
_MAKE_REG = 1 << 8
_MAKE_SOCK = 1 << 9
_MAKE_FIFO = 1 << 10
_MAKE_BLOCK = 1 << 11
_MAKE_SYM = 1 << 12
_REFER = 1 << 13  # ABI 2: rename and link across folders
_TRUNCATE = 1 << 14  # ABI 3
# _IOCTL_DEV (1 << 15, ABI 5) is deliberately not handled: GPU drivers need ioctls on the device nodes they are
# given, and a device node is reachable at all only when a list grants it.

_ABI1_FS = (1 << 13) - 1
_FILE_RIGHTS = _EXECUTE | _WRITE_FILE | _READ_FILE | _TRUNCATE  # the only rights a rule on a non-directory may hold
_READ_RIGHTS = _EXECUTE | _READ_FILE | _READ_DIR
# Handled, so denied everywhere, and granted by no rule: a device node made in a writable folder would open the
# device itself (root could mknod the host's disk; the seccomp filter refuses the same at mknod()).
_DEVICE_RIGHTS = _MAKE_CHAR | _MAKE_BLOCK

_NET_BIND_TCP = 1 << 0  # ABI 4
_NET_CONNECT_TCP = 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
_SCOPE_SIGNAL = 1 << 1


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    libc.prctl.restype = ctypes.c_int
    return libc


def _fail(what):
    err = ctypes.get_errno()
    raise OSError(err, "Landlock %s failed: %s" % (what, os.strerror(err)))


def abi_version():
    """The kernel's Landlock ABI version; raises OSError when the kernel has none."""
    r = _libc().syscall(
        ctypes.c_long(_SYS_CREATE_RULESET), None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION)
    )
    if r < 0:
        err = ctypes.get_errno()
        why = {
            errno.ENOSYS: "the kernel was built without Landlock",
            errno.EOPNOTSUPP: "Landlock is disabled (add it to the lsm= boot parameter)",
        }
        raise OSError(err, "Landlock is not supported: %s" % why.get(err, os.strerror(err)))
    return int(r)


def _handled_fs(abi):
    rights = _ABI1_FS
    if abi >= 2:
        rights |= _REFER
    if abi >= 3:
        rights |= _TRUNCATE
    return rights


def _open_rule_target(path):
    """A descriptor for one rule: an inherited one the host pinned (an int: used as is, never re-resolved), or the
    path opened now (fixed system paths). None when the path does not exist."""
    if isinstance(path, int) and not isinstance(path, bool):
        return path
    try:
        return os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return None  # a path that does not exist grants nothing; like bwrap's --ro-bind-try


def _add_path(libc, ruleset_fd, path, rights):
    fd = _open_rule_target(path)
    if fd is None:
        return
    try:
        # Checked on the descriptor, not the name, so a swapped path cannot change what the rule covers.
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            rights &= _FILE_RIGHTS
        attr = _PathBeneathAttr(allowed_access=rights, parent_fd=fd)
        r = libc.syscall(
            ctypes.c_long(_SYS_ADD_RULE),
            ctypes.c_int(ruleset_fd),
            ctypes.c_int(_RULE_PATH_BENEATH),
            ctypes.byref(attr),
            ctypes.c_uint32(0),
        )
        if r < 0:
            _fail("add_rule for %r" % path)
    finally:
        if fd != path:
            os.close(fd)


def _close_inherited(*lists):
    """The host's pinned descriptors are needed for the rules only: none may reach extension code."""
    for entry in (e for paths in lists for e in paths):
        if isinstance(entry, int) and not isinstance(entry, bool):
            try:
                os.close(entry)
            except OSError:
                pass


def confine(read_only, writable, allow_network, scope=True):
    """Restrict this process to `read_only` and `writable` paths (and TCP unless `allow_network`); returns the ABI.

    Irreversible: the restriction holds for this process and all its children. Raises OSError when the kernel
    offers no Landlock, or when a rule cannot be added. An int in either list is a descriptor the host opened and
    checked (inherited): the rule covers that object, and the descriptor is closed here, whatever happens.
    """
    try:
        return _confine(read_only, writable, allow_network, scope)
    finally:
        _close_inherited(read_only, writable)


def _confine(read_only, writable, allow_network, scope):
    abi = abi_version()
    libc = _libc()
    handled_fs = _handled_fs(abi)
    attr = _RulesetAttr(handled_access_fs=handled_fs)
    size = 8
    if abi >= 4:
        size = 16
        if not allow_network:
            attr.handled_access_net = _NET_BIND_TCP | _NET_CONNECT_TCP
    if abi >= 6 and scope:
        size = 24
        attr.scoped = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL
    ruleset_fd = libc.syscall(
        ctypes.c_long(_SYS_CREATE_RULESET), ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0)
    )
    if ruleset_fd < 0:
        _fail("create_ruleset")
    try:
        for path in read_only:
            _add_path(libc, ruleset_fd, path, _READ_RIGHTS & handled_fs)
        for path in writable:
            _add_path(libc, ruleset_fd, path, handled_fs & ~_DEVICE_RIGHTS)
        # No new privileges: a setuid binary cannot lift the restriction (and restrict_self requires it unprivileged).
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            _fail("prctl(PR_SET_NO_NEW_PRIVS)")
        if libc.syscall(ctypes.c_long(_SYS_RESTRICT_SELF), ctypes.c_int(ruleset_fd), ctypes.c_uint32(0)) < 0:
            _fail("restrict_self")
    finally:
        os.close(ruleset_fd)
    return abi
