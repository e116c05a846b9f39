"""An install's only road out when the load says network: false: to the host's index proxy, and nowhere else.

Two uses, both stdlib-only and run by the host's own interpreter with ``-I -S`` before any install code:

- Under bubblewrap (an empty network namespace), ``python -I -S install_net.py --port P --socket S -- ARGV...``
  listens on the sandbox's own 127.0.0.1:P, forwards every connection to the proxy's Unix socket S (bound in),
  and runs ARGV as its child; it exits with the child's status.
- Under Landlock (the host's network), ``confine_exec.py`` calls ``confine_to_port(P)`` after its own rules:
  a second, stacked ruleset that allows TCP connect to port P only, and a seccomp filter that lets ``socket()``
  make nothing but TCP (UDP, raw, SCTP, MPTCP and every other family refused: Landlock governs TCP alone).
"""

import ctypes
import errno
import os
import socket
import sys
import threading

_SYS_CREATE_RULESET = 444
_SYS_ADD_RULE = 445
_SYS_RESTRICT_SELF = 446
_RULE_NET_PORT = 2
_NET_BIND_TCP = 1 << 0
_NET_CONNECT_TCP = 1 << 1
_PR_SET_NO_NEW_PRIVS = 38
_RULE_PATH_BENEATH = 1
_FS_REFER = 1 << 13  # ABI 2
_AF_INET, _AF_INET6, _AF_UNIX = 2, 10, 1
_IPPROTO_TCP = 6
_EXIT_USAGE = 2


class _NetRulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _NetPortAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64)]


def _check(r, what):
    if r < 0:
        err = ctypes.get_errno()
        raise OSError(err, "install network: %s failed: %s" % (what, os.strerror(err)))


def _landlock_port_only(port):
    """Stack a Landlock ruleset that handles TCP bind and connect and allows only connect to ``port``.

    Every layer denies REFER (moving a file to another folder) unless it handles and grants it, so this layer
    grants it everywhere: the layer below already decides where files may move (uv renames across its cache).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    attr = _NetRulesetAttr(handled_access_fs=_FS_REFER, handled_access_net=_NET_BIND_TCP | _NET_CONNECT_TCP)
    fd = libc.syscall(
        ctypes.c_long(_SYS_CREATE_RULESET), ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)), ctypes.c_uint32(0)
    )
    _check(fd, "create_ruleset (TCP ports need Landlock ABI 4)")
    try:
        root = os.open("/", os.O_PATH | os.O_CLOEXEC)
        try:
            everywhere = _PathBeneathAttr(allowed_access=_FS_REFER, parent_fd=root)
            _check(
                libc.syscall(
                    ctypes.c_long(_SYS_ADD_RULE),
                    ctypes.c_int(fd),
                    ctypes.c_int(_RULE_PATH_BENEATH),
                    ctypes.byref(everywhere),
                    ctypes.c_uint32(0),
                ),
                "add_rule (/)",
            )
        finally:
            os.close(root)
        rule = _NetPortAttr(allowed_access=_NET_CONNECT_TCP, port=port)
        _check(
            libc.syscall(
                ctypes.c_long(_SYS_ADD_RULE),
                ctypes.c_int(fd),
                ctypes.c_int(_RULE_NET_PORT),
                ctypes.byref(rule),
                ctypes.c_uint32(0),
            ),
            "add_rule",
        )
        _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
        _check(libc.syscall(ctypes.c_long(_SYS_RESTRICT_SELF), ctypes.c_int(fd), ctypes.c_uint32(0)), "restrict_self")
    finally:
        os.close(fd)


def tcp_only_program(seccomp, arch):
    """Pure: a seccomp program (seccomp.py's assembler) that lets socket() make TCP and Unix sockets only.

    Unix sockets are left to seccomp.py's own filter, stacked beside this one (it refuses them for installs).
    """
    a = seccomp.ARCHES[arch]
    ld = lambda off: (seccomp._LD_W_ABS, off, None, None)  # noqa: E731
    jeq = lambda k, jt, jf=None: (seccomp._JMP_JEQ_K, k, jt, jf)  # noqa: E731
    p = [ld(seccomp._ARCH), jeq(a.audit, None, "allow"), ld(seccomp._NR), jeq(a.socket, None, "allow")]
    p += [ld(seccomp._arg(0)), jeq(_AF_UNIX, "allow"), jeq(_AF_INET, "inet"), jeq(_AF_INET6, "inet", "eacces")]
    p += [
        "inet",
        ld(seccomp._arg(1)),
        (seccomp._ALU_AND_K, seccomp._SOCK_TYPE_MASK, None, None),
        jeq(seccomp._SOCK_STREAM, None, "eacces"),
    ]
    p += [ld(seccomp._arg(2)), jeq(0, "allow"), jeq(_IPPROTO_TCP, "allow", "eacces")]
    p += [
        "allow",
        (seccomp._RET_K, seccomp.RET_ALLOW, None, None),
        "eacces",
        (seccomp._RET_K, seccomp.RET_ERRNO | errno.EACCES, None, None),
    ]
    return seccomp._assemble(p)


def _install_filter(seccomp, program):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    code = seccomp.program_bytes(program)
    buf = ctypes.create_string_buffer(code, len(code))
    prog = seccomp._SockFprog(len(program), ctypes.addressof(buf))
    arch = seccomp.native_arch()
    _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
    _check(
        libc.syscall(
            ctypes.c_long(seccomp.ARCHES[arch].seccomp), ctypes.c_uint(1), ctypes.c_uint(1), ctypes.byref(prog)
        ),
        "seccomp",
    )


def confine_to_port(port, seccomp):
    """After the caller's own Landlock rules and socket filter: TCP connect to ``port`` only, and no socket but TCP."""
    _landlock_port_only(port)
    _install_filter(seccomp, tcp_only_program(seccomp, seccomp.native_arch()))


def _pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _relay(client, socket_path):
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.connect(socket_path)
    except OSError:
        client.close()
        upstream.close()
        return
    back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
    back.start()
    _pump(client, upstream)
    back.join()
    client.close()
    upstream.close()


def start_forwarder(port, socket_path):
    """Listen on 127.0.0.1:``port`` (before returning, so the installer never races it) and relay to the proxy."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)

    def accept_loop():
        while True:
            client, _ = listener.accept()
            threading.Thread(target=_relay, args=(client, socket_path), daemon=True).start()

    threading.Thread(target=accept_loop, daemon=True).start()


def main(argv):
    if len(argv) < 6 or argv[0] != "--port" or argv[2] != "--socket" or argv[4] != "--" or not os.path.isabs(argv[5]):
        sys.stderr.write("usage: install_net.py --port P --socket PATH -- /absolute/program [args...]\n")
        os._exit(_EXIT_USAGE)
    start_forwarder(int(argv[1]), argv[3])
    command = argv[5:]
    pid = os.fork()
    if pid == 0:
        try:
            os.execv(command[0], command)
        except OSError as e:
            sys.stderr.write("install_net.py: could not run %s: %s\n" % (command[0], e))
            os._exit(127)
    _, status = os.waitpid(pid, 0)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))


if __name__ == "__main__":
    main(sys.argv[1:])
