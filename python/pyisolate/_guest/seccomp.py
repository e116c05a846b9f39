"""The guest's seccomp filter, installed right after Landlock: stdlib ctypes only.

Two parts, each optional (``install(network, unix_sockets, sockets=True, processes=True)``).

Sockets. Landlock polices opens and TCP. It does not see ``connect()`` to a Unix socket by path
(``/run/docker.sock``), nor UDP, raw or packet sockets. Seccomp cannot read the address a socket connects to, but it
can read the family given to ``socket()``, so the filter refuses, with EACCES:

- ``socket(AF_UNIX)`` unless ``unix_sockets``; ``socketpair(AF_UNIX)`` stays allowed for stream and seqpacket
  pairs (asyncio's self-pipe, multiprocessing's duplex pipes), which reach nothing but each other;
- without ``network``, every other family too (IP of any protocol, packet, netlink, vsock, ...);
- ``io_uring_setup``, with EPERM (what hosts that disable io_uring answer): io_uring creates and connects sockets
  without a system call that a filter could see.

Processes and the machine (``PROCESS_RULES``), refused with EPERM. Capabilities are dropped before the filter runs,
but a process needs none to change another process of its own uid: the host's limits, priority, CPU pinning and
scheduling are refused unless the target is the caller itself (pid 0); the kernel's keyrings, BPF, perf events, log,
host and domain names, and device nodes, whatever the capabilities say.

Any system call of another ABI (i386 ``int 0x80``, x32, 32-bit ARM) kills the process. The filter is inherited by
every child and kept across ``execve``; like Landlock it needs ``no_new_privs``, which it sets.
"""

import ctypes
import errno
import os
import struct

__all__ = ["ARCHES", "PROCESS_RULES", "build_program", "install", "native_arch", "program_bytes"]

# Classic BPF, as seccomp runs it (linux/filter.h).
_LD_W_ABS = 0x20
_ALU_AND_K = 0x54
_JMP_JA = 0x05
_JMP_JEQ_K = 0x15
_JMP_JGE_K = 0x35
_RET_K = 0x06

# Return values (linux/seccomp.h).
RET_KILL_PROCESS = 0x80000000
RET_ERRNO = 0x00050000
RET_ALLOW = 0x7FFF0000

# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6]. Both arches are little-endian, so an
# argument's low 32 bits (all an `int` parameter has: the kernel ignores the rest) sit at its own offset.
_NR = 0
_ARCH = 4


def _arg(i):
    return 16 + 8 * i


_X32_SYSCALL_BIT = 0x40000000
_NO_SYSCALL = 0xFFFFFFFF  # nr -1: what a tracer sets to skip a call; the kernel answers ENOSYS itself

AF_UNIX = 1
_SOCK_TYPE_MASK = 0xF  # the rest of socket()'s type holds SOCK_NONBLOCK and SOCK_CLOEXEC
_SOCK_STREAM = 1
_SOCK_SEQPACKET = 5

_PR_SET_NO_NEW_PRIVS = 38
_SECCOMP_SET_MODE_FILTER = 1
_SECCOMP_FILTER_FLAG_TSYNC = 1


_S_IFMT = 0o170000
_S_IFCHR = 0o020000
_S_IFBLK = 0o060000
_PRIO_PROCESS = 0  # setpriority(): `who` is a process id (PRIO_PGRP and PRIO_USER reach a group or a whole uid)
_IOPRIO_WHO_PROCESS = 1


class Arch:
    """One ABI's numbers: its audit tag, and the system calls the filter looks at (``None``: the ABI has none)."""

    def __init__(self, audit, x32, **numbers):
        self.audit, self.x32, self.numbers = audit, x32, numbers
        for name, nr in numbers.items():
            setattr(self, name, nr)


# The generic table (asm-generic/unistd.h) that aarch64 uses, and x86_64's own.
_NUMBERS = {
    #                      x86_64 aarch64
    "socket": (41, 198),
    "socketpair": (53, 199),
    "io_uring_setup": (425, 425),
    "seccomp": (317, 277),
    "prlimit64": (302, 261),
    "setpriority": (141, 140),
    "sched_setparam": (142, 118),
    "sched_setscheduler": (144, 119),
    "sched_setaffinity": (203, 122),
    "sched_setattr": (314, 274),
    "ioprio_set": (251, 30),
    "keyctl": (250, 219),
    "add_key": (248, 217),
    "request_key": (249, 218),
    "bpf": (321, 280),
    "perf_event_open": (298, 241),
    "syslog": (103, 116),
    "sethostname": (170, 161),
    "setdomainname": (171, 162),
    "mknod": (133, None),
    "mknodat": (259, 33),
}

ARCHES = {
    # x32 calls arrive under the x86_64 tag with bit 30 set in the number: refused by range.
    "x86_64": Arch(audit=0xC000003E, x32=True, **{name: nrs[0] for name, nrs in _NUMBERS.items()}),
    "aarch64": Arch(audit=0xC00000B7, x32=False, **{name: nrs[1] for name, nrs in _NUMBERS.items()}),
}

# Policy as data: each system call of the processes part, and the rule that judges it.
PROCESS_RULES = {
    # The kernel's keyrings hold the session's and the uid's secrets (Kerberos tickets, ecryptfs keys): readable
    # without any capability by a process of the same uid.
    "keyctl": "deny",
    "add_key": "deny",
    "request_key": "deny",
    # Kernel attack surface and kernel-wide observation; unprivileged BPF and perf exist on many kernels.
    "bpf": "deny",
    "perf_event_open": "deny",
    # The kernel log (dmesg): addresses and other processes' messages.
    "syslog": "deny",
    # The host's names, shared without a UTS namespace.
    "sethostname": "deny",
    "setdomainname": "deny",
    # Limits, scheduling and CPU pinning of another process (the host: RLIMIT_CPU killed it with SIGXCPU) need no
    # capability within one uid: only the caller itself, pid 0, is allowed (glibc's setrlimit and nice use 0).
    "prlimit64": "self_arg0",
    "sched_setaffinity": "self_arg0",
    "sched_setscheduler": "self_arg0",
    "sched_setparam": "self_arg0",
    "sched_setattr": "self_arg0",
    # (which, who): PRIO_PGRP/PRIO_USER with who 0 reach the caller's group or every process of its uid.
    "setpriority": "self_prio",
    "ioprio_set": "self_ioprio",
    # Device nodes (character or block): regular files, fifos and sockets stay allowed.
    "mknod": "mode_arg1",
    "mknodat": "mode_arg2",
}


def native_arch():
    """This process's ABI name, as a key of ``ARCHES``; raises OSError for one the filter does not know."""
    machine = os.uname().machine
    if machine not in ARCHES:
        raise OSError(errno.ENOTSUP, "the seccomp socket filter knows x86_64 and aarch64, not %s" % machine)
    return machine


def _assemble(items):
    """Resolve labels: ``items`` holds (code, k, jt, jf) with label names as targets, and plain label strings."""
    where, count = {}, 0
    for item in items:
        if isinstance(item, str):
            where[item] = count
        else:
            count += 1
    out, pc = [], 0
    for item in items:
        if isinstance(item, str):
            continue
        code, k, jt, jf = item
        off = {label: where[label] - pc - 1 for label in (jt, jf) if label}
        if code == _JMP_JA:
            k, jt, jf = off[jt], None, None
        out.append((code, off.get(jt, 0), off.get(jf, 0), k))
        pc += 1
    return out


def build_program(arch, network, unix_sockets, sockets=True, processes=True, self_pid=0):
    """Pure: the filter for ABI ``arch`` as a list of (code, jt, jf, k) instructions.

    ``sockets``: the socket part (``network`` and ``unix_sockets`` say what it lets through); ``processes``: the
    ``PROCESS_RULES`` part, where the caller is pid 0 and, when given, ``self_pid`` (``os.getpid()`` as code often
    spells "myself"; its children inherit the filter and may name it too, which reaches nothing outside the
    extension). Other ABIs are killed either way.
    """
    a = ARCHES[arch]

    def ld(offset):
        return (_LD_W_ABS, offset, None, None)

    def jeq(k, jt, jf=None):
        return (_JMP_JEQ_K, k, jt, jf)

    def goto(label):
        return (_JMP_JA, 0, label, None)

    p = [ld(_ARCH), jeq(a.audit, None, "kill"), ld(_NR)]
    if a.x32:
        p += [(_JMP_JGE_K, _X32_SYSCALL_BIT, "high", None)]
    if sockets:
        p += [jeq(a.socket, "socket"), jeq(a.socketpair, "socketpair"), jeq(a.io_uring_setup, "eperm")]
    if processes:
        p += [
            jeq(a.numbers[name], rule if rule != "deny" else "eperm")
            for name, rule in PROCESS_RULES.items()
            if a.numbers[name] is not None
        ]
    p += [goto("allow")]
    if a.x32:
        p += ["high", jeq(_NO_SYSCALL, "allow", "kill")]
    if sockets:
        p += _socket_part(network, unix_sockets, ld, jeq, goto)
    if processes:
        p += _process_part(ld, jeq, goto, self_pid)
    p += [
        "allow",
        (_RET_K, RET_ALLOW, None, None),
        "eacces",
        (_RET_K, RET_ERRNO | errno.EACCES, None, None),
        "eperm",
        (_RET_K, RET_ERRNO | errno.EPERM, None, None),
        "kill",
        (_RET_K, RET_KILL_PROCESS, None, None),
    ]
    return _assemble(p)


def _socket_part(network, unix_sockets, ld, jeq, goto):
    # socketpair(): Unix stream pairs reach nothing but each other; any other family gets socket()'s answer below.
    p = ["socketpair", ld(_arg(0)), jeq(AF_UNIX, None, "families")]
    if unix_sockets:
        p += [goto("allow")]
    else:
        # A datagram pair could still sendto() any datagram socket by path (/dev/log, journald): refused with socket().
        p += [
            ld(_arg(1)),
            (_ALU_AND_K, _SOCK_TYPE_MASK, None, None),
            jeq(_SOCK_STREAM, "allow"),
            jeq(_SOCK_SEQPACKET, "allow"),
            goto("eacces"),
        ]
    # socket(): the family is the first argument.
    p += ["socket", ld(_arg(0)), "families"]
    if network:
        p += [] if unix_sockets else [jeq(AF_UNIX, "eacces")]
        p += [goto("allow")]
    else:
        p += [jeq(AF_UNIX, "allow")] if unix_sockets else []
        p += [goto("eacces")]
    return p


def _process_part(ld, jeq, goto, self_pid):
    # Every argument checked is an int (pid_t, int, umode_t): its low 32 bits are all the kernel reads.
    def is_self():
        return [jeq(0, "allow", None if self_pid else "eperm")] + (
            [jeq(self_pid, "allow", "eperm")] if self_pid else []
        )

    return [
        "self_arg0",
        ld(_arg(0)),
        *is_self(),
        "self_prio",
        ld(_arg(0)),
        jeq(_PRIO_PROCESS, "self_arg1", "eperm"),
        "self_ioprio",
        ld(_arg(0)),
        jeq(_IOPRIO_WHO_PROCESS, None, "eperm"),
        "self_arg1",
        ld(_arg(1)),
        *is_self(),
        "mode_arg1",
        ld(_arg(1)),
        goto("mode"),
        "mode_arg2",
        ld(_arg(2)),
        "mode",
        (_ALU_AND_K, _S_IFMT, None, None),
        jeq(_S_IFCHR, "eperm"),
        jeq(_S_IFBLK, "eperm"),
        goto("allow"),
    ]


def program_bytes(program):
    """Pure: the instructions as the kernel's ``struct sock_filter`` array (little-endian, as both arches are)."""
    return b"".join(struct.pack("<HBBI", code, jt, jf, k) for code, jt, jf, k in program)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(network, unix_sockets, sockets=True, processes=True):
    """Install the filter on this process (all its threads) and every process it starts; irreversible.

    Raises OSError when the ABI is unknown or the kernel refuses: the caller must not run anything unconfined.
    """
    arch = native_arch()
    program = build_program(arch, network, unix_sockets, sockets, processes, os.getpid())
    code = program_bytes(program)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "seccomp: prctl(PR_SET_NO_NEW_PRIVS) failed: %s" % os.strerror(err))
    buf = ctypes.create_string_buffer(code, len(code))
    prog = _SockFprog(len(program), ctypes.addressof(buf))
    r = libc.syscall(
        ctypes.c_long(ARCHES[arch].seccomp),
        ctypes.c_uint(_SECCOMP_SET_MODE_FILTER),
        ctypes.c_uint(_SECCOMP_FILTER_FLAG_TSYNC),
        ctypes.byref(prog),
    )
    if r != 0:
        err = ctypes.get_errno() if r < 0 else errno.EBUSY
        why = {
            errno.ENOSYS: "the kernel has no seccomp(2)",
            errno.EINVAL: "the kernel was built without seccomp filters (CONFIG_SECCOMP_FILTER) or refused the program",
            errno.EBUSY: "another thread could not take the filter (thread %d)" % r,
        }
        raise OSError(err, "seccomp filter could not be installed: %s" % why.get(err, os.strerror(err)))
    return len(program)
