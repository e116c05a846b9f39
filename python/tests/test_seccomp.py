"""The seccomp socket filter: its BPF program for x86_64 and aarch64 (pure), and what it refuses on this kernel."""

import itertools
import json
import os
import signal
import struct
import subprocess
import sys
import unittest

from tests.landlock_support import GUEST_DIR

sys.path.insert(0, GUEST_DIR)
try:
    import seccomp  # noqa: E402  (by path, as confine_exec.py loads it)
finally:
    sys.path.remove(GUEST_DIR)

ALLOW, KILL = seccomp.RET_ALLOW, seccomp.RET_KILL_PROCESS
EACCES, EPERM = seccomp.RET_ERRNO | 13, seccomp.RET_ERRNO | 1
X86_64, AARCH64, I386 = 0xC000003E, 0xC00000B7, 0x40000003
AF_UNIX, AF_INET, AF_INET6, AF_NETLINK, AF_PACKET, AF_VSOCK = 1, 2, 10, 16, 17, 40
STREAM, DGRAM, SEQPACKET, RAW = 1, 2, 5, 3
NONBLOCK_CLOEXEC = 0o4000 | 0o2000000


def run_bpf(program, arch, nr, args=()):
    """A classic-BPF interpreter for the few instructions the filter uses, over a packed ``struct seccomp_data``."""
    data = struct.pack("<iIQ6Q", nr, arch, 0, *(list(args) + [0] * 6)[:6])
    a, pc = 0, 0
    while True:
        code, jt, jf, k = program[pc]
        pc += 1
        if code == 0x20:
            a = struct.unpack_from("<I", data, k)[0]
        elif code == 0x54:
            a &= k
        elif code == 0x05:
            pc += k
        elif code in (0x15, 0x35):
            pc += jt if (a == k if code == 0x15 else a >= k) else jf
        elif code == 0x06:
            return k
        else:
            raise AssertionError("unexpected BPF code %#x" % code)


class ProgramBytesTest(unittest.TestCase):
    """The exact socket part for the default policy (no network, no Unix sockets), instruction by instruction."""

    def test_x86_64(self):
        expected = [
            (0x20, 0, 0, 4),  # A = arch
            (0x15, 0, 19, X86_64),  # not x86_64: kill
            (0x20, 0, 0, 0),  # A = nr
            (0x35, 4, 0, 0x40000000),  # x32 range (bit 30)
            (0x15, 11, 0, 41),  # socket
            (0x15, 3, 0, 53),  # socketpair
            (0x15, 13, 0, 425),  # io_uring_setup: EPERM
            (0x05, 0, 0, 10),  # anything else: allow
            (0x15, 9, 12, 0xFFFFFFFF),  # x32 range: nr -1 (a tracer's skip) is allowed, the rest killed
            (0x20, 0, 0, 16),  # socketpair: A = domain
            (0x15, 0, 6, AF_UNIX),  # not AF_UNIX: socket()'s rule
            (0x20, 0, 0, 24),  # A = type
            (0x54, 0, 0, 0xF),  # without SOCK_NONBLOCK, SOCK_CLOEXEC
            (0x15, 4, 0, STREAM),
            (0x15, 3, 0, SEQPACKET),
            (0x05, 0, 0, 3),  # a datagram pair: EACCES
            (0x20, 0, 0, 16),  # socket: A = domain
            (0x05, 0, 0, 1),  # no network, no Unix: every family EACCES
            (0x06, 0, 0, ALLOW),
            (0x06, 0, 0, EACCES),
            (0x06, 0, 0, EPERM),
            (0x06, 0, 0, KILL),
        ]
        self.assertEqual(seccomp.build_program("x86_64", False, False, processes=False), expected)

    def test_aarch64(self):
        program = seccomp.program_bytes(seccomp.build_program("aarch64", False, False, processes=False))
        # No x32 on arm64, and its own numbers: socket 198, socketpair 199 (io_uring_setup is 425 everywhere).
        self.assertEqual(
            program.hex(),
            (
                "2000000004000000"
                "15000011b70000c0"
                "2000000000000000"
                "15000a00c6000000"
                "15000200c7000000"
                "15000c00a9010000"
                "0500000009000000"
                "2000000010000000"
                "1500000601000000"
                "2000000018000000"
                "540000000f000000"
                "1500040001000000"
                "1500030005000000"
                "0500000003000000"
                "2000000010000000"
                "0500000001000000"
                "060000000000ff7f"
                "060000000d000500"
                "0600000001000500"
                "0600000000000080"
            ),
        )

    def test_every_jump_lands_inside_the_program(self):
        for arch in seccomp.ARCHES:
            for network, unix, sockets, processes in itertools.product((False, True), repeat=4):
                with self.subTest(arch=arch, network=network, unix=unix, sockets=sockets, processes=processes):
                    program = seccomp.build_program(arch, network, unix, sockets, processes)
                    self.assertLess(len(program), 128, "every jump offset fits in a byte with room to spare")
                    for pc, (code, jt, jf, k) in enumerate(program):
                        if code not in (0x05, 0x15, 0x35):
                            continue
                        for off in (jt, jf, k if code == 0x05 else 0):
                            self.assertTrue(0 <= off and pc + 1 + off < len(program), (arch, pc))
                    self.assertEqual(program[-1], (0x06, 0, 0, KILL))


class VerdictTest(unittest.TestCase):
    """What each policy answers, by running the program on synthetic system calls."""

    def verdicts(self, arch, network, unix):
        a = seccomp.ARCHES[arch]
        program = seccomp.build_program(arch, network, unix)

        def v(nr, *args):
            return run_bpf(program, a.audit, nr, args)

        return a, program, v

    def test_families_per_policy(self):
        for arch in seccomp.ARCHES:
            for network in (False, True):
                for unix in (False, True):
                    a, _, v = self.verdicts(arch, network, unix)
                    with self.subTest(arch=arch, network=network, unix=unix):
                        self.assertEqual(v(a.socket, AF_UNIX, STREAM), ALLOW if unix else EACCES)
                        self.assertEqual(
                            v(a.socket, AF_UNIX | 0xFFFF00000000, STREAM),
                            ALLOW if unix else EACCES,
                            "the high half is ignored, as by the kernel",
                        )
                        for family in (AF_INET, AF_INET6, AF_NETLINK, AF_PACKET, AF_VSOCK, 38, 45):
                            self.assertEqual(v(a.socket, family, DGRAM), ALLOW if network else EACCES, family)
                        self.assertEqual(v(a.socketpair, AF_UNIX, STREAM | NONBLOCK_CLOEXEC), ALLOW)
                        self.assertEqual(v(a.socketpair, AF_UNIX, SEQPACKET), ALLOW)
                        self.assertEqual(v(a.socketpair, AF_UNIX, DGRAM), ALLOW if unix else EACCES)
                        self.assertEqual(
                            v(a.socketpair, 30, RAW), ALLOW if network else EACCES, "TIPC pairs follow socket()"
                        )
                        self.assertEqual(v(a.io_uring_setup, 1, 0), EPERM)
                        for nr in (0, 1, 56, 59, 57, 220, 221, 435, 42, 39):  # read, write, clone, exec, connect, ...
                            self.assertEqual(v(nr, AF_UNIX), ALLOW, nr)

    def test_other_abis_are_killed(self):
        for arch in seccomp.ARCHES:
            _, program, _ = self.verdicts(arch, True, True)
            others = [x.audit for x in seccomp.ARCHES.values() if x.audit != seccomp.ARCHES[arch].audit] + [
                I386,
                0x40000028,
            ]
            for audit in others:
                self.assertEqual(run_bpf(program, audit, 102, (1, 0)), KILL)  # i386 socketcall, 32-bit ARM, ...
        _, _, v = self.verdicts("x86_64", True, True)
        self.assertEqual(v(0x40000000 | 41, AF_UNIX), KILL, "x32's socket")
        self.assertEqual(v(0x40000000 | 0), KILL)
        self.assertEqual(v(-1), ALLOW, "nr -1: the kernel answers ENOSYS itself")


class UnknownAbiTest(unittest.TestCase):
    def test_an_abi_the_filter_does_not_know_is_an_error_before_anything_is_installed(self):
        real = os.uname

        def fake():
            u = real()
            return os.uname_result((u.sysname, u.nodename, u.release, u.version, "riscv64"))

        os.uname = fake
        try:
            with self.assertRaisesRegex(OSError, "knows x86_64 and aarch64, not riscv64"):
                seccomp.install(False, False)
        finally:
            os.uname = real


# What a confined child reports: each attempt's errno name (or "ok"), and the install's cost.
CHILD = r"""
import ctypes, errno, json, os, socket, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
import seccomp
spec = json.loads(sys.argv[2])
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

def attempt(fn):
    try:
        fn()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))

def uring():
    params = ctypes.create_string_buffer(120)
    fd = libc.syscall(ctypes.c_long(425), ctypes.c_uint(1), params)
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    os.close(fd)

def child_unix():
    r = subprocess.run([sys.executable, "-I", "-S", "-c", "import socket; socket.socket(socket.AF_UNIX)"], capture_output=True, text=True)
    if r.returncode:
        raise PermissionError(errno.EACCES, r.stderr.strip().splitlines()[-1])

if spec["confine"]:
    start = time.perf_counter()
    seccomp.install(spec["network"], spec["unix"])
    took = time.perf_counter() - start
else:
    took = 0
out = {
    "install_us": took * 1e6,
    "unix": attempt(lambda: socket.socket(socket.AF_UNIX).close()),
    "unix_connect": attempt(lambda: socket.socket(socket.AF_UNIX).connect(spec["unix_path"])),
    "pair": attempt(lambda: [s.close() for s in socket.socketpair()]),
    "dgram_pair": attempt(lambda: [s.close() for s in socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)]),
    "udp": attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()),
    "tcp6": attempt(lambda: socket.socket(socket.AF_INET6).close()),
    "netlink": attempt(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).close()),
    "io_uring": attempt(uring),
    "child_unix": attempt(child_unix),
}
import asyncio
asyncio.run(asyncio.sleep(0))  # its self-pipe is a socketpair
out["asyncio"] = "ok"
print(json.dumps(out))
"""

# Runs a system call through another ABI; prints its result, if the process lives to print it.
FOREIGN = r"""
import ctypes, mmap, sys
sys.path.insert(0, sys.argv[1])
import seccomp
if sys.argv[2] == "1":
    seccomp.install(True, True)
if sys.argv[3] == "x32":
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    r = libc.syscall(ctypes.c_long(0x40000000 | 41), 1, 1, 0)  # x32's socket(AF_UNIX, SOCK_STREAM)
    print(r if r >= 0 else -ctypes.get_errno())
else:
    # i386's socket(AF_UNIX, SOCK_STREAM, 0) by int 0x80: push rbx; mov eax, 359; mov ebx, 1; mov ecx, 1;
    # xor edx, edx; int 0x80; pop rbx; ret
    code = bytes.fromhex("53" "b867010000" "bb01000000" "b901000000" "31d2" "cd80" "5b" "c3")
    m = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    m.write(code)
    fn = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(m)))
    print(fn())
"""


@unittest.skipUnless(
    sys.platform.startswith("linux") and os.uname().machine in seccomp.ARCHES,
    "the filter is for Linux on x86_64 and aarch64",
)
class KernelTest(unittest.TestCase):
    """The filter as the kernel applies it, in child processes (it cannot be taken off again)."""

    def run_child(self, confine, network=False, unix=False):
        spec = {"confine": confine, "network": network, "unix": unix, "unix_path": "/nonexistent/pyisolate.sock"}
        r = subprocess.run(
            [sys.executable, "-I", "-S", "-c", CHILD, GUEST_DIR, json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_control_unconfined_every_socket_can_be_made(self):
        out = self.run_child(False)
        for key in ("unix", "pair", "dgram_pair", "udp", "tcp6", "netlink", "child_unix", "asyncio"):
            self.assertEqual(out[key], "ok", key)
        self.assertEqual(out["unix_connect"], "ENOENT", "connect() reaches the path lookup")

    def test_no_network_no_unix_only_stream_pairs(self):
        out = self.run_child(True)
        for key in ("unix", "unix_connect", "dgram_pair", "udp", "tcp6", "netlink", "child_unix"):
            self.assertEqual(out[key], "EACCES", key)
        self.assertEqual(out["io_uring"], "EPERM")
        self.assertEqual(out["pair"], "ok")
        self.assertEqual(out["asyncio"], "ok")
        sys.stderr.write("\n  seccomp filter installed in %.0f us\n" % out["install_us"])

    def test_network_keeps_every_family_but_unix(self):
        out = self.run_child(True, network=True)
        for key in ("udp", "tcp6", "netlink", "pair"):
            self.assertEqual(out[key], "ok", key)
        for key in ("unix", "unix_connect", "dgram_pair", "child_unix"):
            self.assertEqual(out[key], "EACCES", key)

    def test_unix_sockets_when_asked(self):
        out = self.run_child(True, unix=True)
        self.assertEqual(out["unix"], "ok")
        self.assertEqual(out["unix_connect"], "ENOENT")
        self.assertEqual(out["dgram_pair"], "ok")
        self.assertEqual(out["udp"], "EACCES")

    def foreign(self, confine, how):
        return subprocess.run(
            [sys.executable, "-I", "-S", "-c", FOREIGN, GUEST_DIR, "1" if confine else "0", how],
            capture_output=True,
            text=True,
            timeout=30,
        )

    @unittest.skipUnless(os.uname().machine == "x86_64", "x32 and i386 are x86_64's other ABIs")
    def test_x32_calls_kill_the_process(self):
        control = self.foreign(False, "x32")
        self.assertEqual(control.returncode, 0, control.stderr)  # ENOSYS without x32 support, or a socket
        self.assertEqual(self.foreign(True, "x32").returncode, -signal.SIGSYS)

    @unittest.skipUnless(os.uname().machine == "x86_64", "x32 and i386 are x86_64's other ABIs")
    def test_i386_int_0x80_kills_the_process(self):
        control = self.foreign(False, "i386")
        if control.returncode != 0 or int(control.stdout) < 0:
            self.skipTest(
                "this kernel runs no i386 system calls (IA32 emulation off): %s"
                % (control.stderr or control.stdout).strip()
            )
        self.assertEqual(self.foreign(True, "i386").returncode, -signal.SIGSYS)


if __name__ == "__main__":
    unittest.main()
