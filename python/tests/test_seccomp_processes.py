"""The seccomp filter's process part (pure verdicts, then the kernel's) and the capability drop, each with its control."""

import json
import os
import subprocess
import sys
import time
import unittest

from tests.landlock_support import ABI, GUEST_DIR, PYTHON_PREFIXES, WHY
from tests.test_seccomp import ALLOW, EPERM, run_bpf, seccomp

ROOT = os.geteuid() == 0
S_IFCHR, S_IFBLK, S_IFREG, S_IFIFO, S_IFSOCK = 0o020000, 0o060000, 0o100000, 0o010000, 0o140000
HIGH = 0xFFFF << 32  # a 64-bit argument's high half: the kernel reads an int's low 32 bits only


class ProcessVerdictTest(unittest.TestCase):
    """Every rule of PROCESS_RULES, run on synthetic calls for both ABIs."""

    def v(self, arch, name, *args, processes=True, sockets=True):
        a = seccomp.ARCHES[arch]
        program = seccomp.build_program(arch, False, False, sockets, processes)
        return run_bpf(program, a.audit, a.numbers[name], args)

    def test_denied_outright_whatever_the_arguments(self):
        for arch in seccomp.ARCHES:
            for name in (
                "keyctl",
                "add_key",
                "request_key",
                "bpf",
                "perf_event_open",
                "syslog",
                "sethostname",
                "setdomainname",
            ):
                for args in ((), (0, 0), (1, 2, 3)):
                    self.assertEqual(self.v(arch, name, *args), EPERM, (arch, name, args))

    def test_limits_scheduling_and_pinning_only_on_the_caller(self):
        for arch in seccomp.ARCHES:
            for name in ("prlimit64", "sched_setaffinity", "sched_setscheduler", "sched_setparam", "sched_setattr"):
                with self.subTest(arch=arch, name=name):
                    self.assertEqual(self.v(arch, name, 0, 9, 0), ALLOW, "pid 0: the caller")
                    self.assertEqual(self.v(arch, name, HIGH, 9, 0), ALLOW, "pid 0 with a high half")
                    self.assertEqual(self.v(arch, name, 1234, 9, 0), EPERM, "another process")
                    self.assertEqual(self.v(arch, name, 1, 0, 0), EPERM, "init")
                    self.assertEqual(self.v(arch, name, 0xFFFFFFFF, 0, 0), EPERM, "pid -1")

    def test_setpriority_only_for_the_calling_process(self):
        for arch in seccomp.ARCHES:
            self.assertEqual(self.v(arch, "setpriority", 0, 0, 10), ALLOW, "PRIO_PROCESS, who 0")
            self.assertEqual(self.v(arch, "setpriority", 0, 4321, 10), EPERM, "PRIO_PROCESS of another pid")
            self.assertEqual(self.v(arch, "setpriority", 1, 0, 10), EPERM, "PRIO_PGRP, its own group")
            self.assertEqual(self.v(arch, "setpriority", 2, 0, 10), EPERM, "PRIO_USER 0: every process of the uid")

    def test_ioprio_set_only_for_the_calling_process(self):
        for arch in seccomp.ARCHES:
            self.assertEqual(self.v(arch, "ioprio_set", 1, 0, 0x4000), ALLOW, "IOPRIO_WHO_PROCESS, who 0")
            self.assertEqual(self.v(arch, "ioprio_set", 1, 4321, 0), EPERM)
            self.assertEqual(self.v(arch, "ioprio_set", 2, 0, 0), EPERM, "IOPRIO_WHO_PGRP")
            self.assertEqual(self.v(arch, "ioprio_set", 3, 0, 0), EPERM, "IOPRIO_WHO_USER 0: every process of the uid")

    def test_mknod_of_devices_only(self):
        cases = {"mknodat": 2, "mknod": 1}
        for arch in seccomp.ARCHES:
            for name, at in cases.items():
                if seccomp.ARCHES[arch].numbers[name] is None:
                    continue  # aarch64 has mknodat only
                for mode, verdict in (
                    (S_IFCHR | 0o600, EPERM),
                    (S_IFBLK | 0o660, EPERM),
                    (S_IFREG | 0o644, ALLOW),
                    (S_IFIFO | 0o600, ALLOW),
                    (S_IFSOCK | 0o600, ALLOW),
                    (0o644, ALLOW),
                    (HIGH | S_IFCHR, EPERM),
                ):
                    args = [0, 0, 0]
                    args[at] = mode
                    self.assertEqual(self.v(arch, name, *args), verdict, (arch, name, oct(mode)))

    def test_the_caller_s_own_pid_counts_as_itself_when_given(self):
        for arch in seccomp.ARCHES:
            a = seccomp.ARCHES[arch]
            program = seccomp.build_program(arch, False, False, self_pid=4242)
            for name in ("prlimit64", "sched_setaffinity", "sched_setscheduler", "sched_setparam", "sched_setattr"):
                self.assertEqual(run_bpf(program, a.audit, a.numbers[name], (4242, 0, 0)), ALLOW, name)
                self.assertEqual(run_bpf(program, a.audit, a.numbers[name], (0, 0, 0)), ALLOW, name)
                self.assertEqual(run_bpf(program, a.audit, a.numbers[name], (4243, 0, 0)), EPERM, name)
            self.assertEqual(run_bpf(program, a.audit, a.setpriority, (0, 4242, 5)), ALLOW)
            self.assertEqual(
                run_bpf(program, a.audit, a.setpriority, (2, 4242, 5)),
                EPERM,
                "PRIO_USER of a uid that happens to be the pid",
            )
            self.assertEqual(run_bpf(program, a.audit, a.ioprio_set, (1, 4242, 0)), ALLOW)
            self.assertEqual(run_bpf(program, a.audit, a.ioprio_set, (1, 4243, 0)), EPERM)

    def test_without_the_process_part_everything_passes_and_sockets_alone_keep_their_rules(self):
        for arch in seccomp.ARCHES:
            for name in seccomp.PROCESS_RULES:
                if seccomp.ARCHES[arch].numbers[name] is not None:
                    self.assertEqual(self.v(arch, name, 1234, S_IFCHR, S_IFCHR, processes=False), ALLOW, name)
            a = seccomp.ARCHES[arch]
            only_processes = seccomp.build_program(arch, False, False, sockets=False, processes=True)
            self.assertEqual(
                run_bpf(only_processes, a.audit, a.socket, (2, 2)), ALLOW, "bwrap's filter leaves sockets alone"
            )
            self.assertEqual(run_bpf(only_processes, a.audit, a.keyctl, (0,)), EPERM)
            self.assertEqual(
                run_bpf(only_processes, 0x40000003, 1, ()), seccomp.RET_KILL_PROCESS, "another ABI is killed"
            )


# Attempts each call on a sacrificial process (argv[3]) and on itself; prints each errno name or "ok".
CHILD = r"""
import ctypes, errno, json, os, resource, socket, sys
sys.path.insert(0, sys.argv[1])
import caps, seccomp
mode, victim, tmp = sys.argv[2], int(sys.argv[3]), sys.argv[4]
if mode != "control":
    caps.drop_all()
    seccomp.install(True, True, sockets=mode == "both", processes=True)
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
nr = seccomp.ARCHES[seccomp.native_arch()].numbers

def attempt(fn):
    try:
        fn()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))

def sys_(name, *args):
    def call():
        if libc.syscall(ctypes.c_long(nr[name]), *args) < 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
    return call

cpu = os.sched_getaffinity(0)
attr = bytearray(128)
out = {
    "prlimit_other": attempt(lambda: resource.prlimit(victim, resource.RLIMIT_CPU, (3600, 3600))),
    "prlimit_self": attempt(lambda: resource.prlimit(0, resource.RLIMIT_NOFILE, resource.getrlimit(resource.RLIMIT_NOFILE))),
    "setrlimit_self": attempt(lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0))),
    "renice_other": attempt(lambda: os.setpriority(os.PRIO_PROCESS, victim, 5)),
    "renice_user": attempt(lambda: os.setpriority(os.PRIO_USER, 0, os.getpriority(os.PRIO_USER, 0))),
    "renice_self": attempt(lambda: os.setpriority(os.PRIO_PROCESS, 0, 3)),
    "nice_self": attempt(lambda: os.nice(1)),
    "pin_other": attempt(lambda: os.sched_setaffinity(victim, cpu)),
    "pin_self": attempt(lambda: os.sched_setaffinity(0, cpu)),
    "pin_own_pid": attempt(lambda: os.sched_setaffinity(os.getpid(), cpu)),
    "renice_own_pid": attempt(lambda: os.setpriority(os.PRIO_PROCESS, os.getpid(), 4)),
    "sched_other": attempt(lambda: os.sched_setscheduler(victim, os.SCHED_OTHER, os.sched_param(0))),
    "sched_param_other": attempt(lambda: os.sched_setparam(victim, os.sched_param(0))),
    "ioprio_other": attempt(sys_("ioprio_set", 1, victim, (2 << 13) | 4)),
    "ioprio_self": attempt(sys_("ioprio_set", 1, 0, (2 << 13) | 4)),
    "keyctl": attempt(sys_("keyctl", 0, ctypes.c_int(-3), 0)),  # KEYCTL_GET_KEYRING_ID of the session keyring
    "add_key": attempt(sys_("add_key", b"user", b"pyisolate-probe", b"x", 1, ctypes.c_int(-2))),
    "syslog": attempt(sys_("syslog", 10, 0, 0)),  # SYSLOG_ACTION_SIZE_BUFFER
    "bpf": attempt(sys_("bpf", 0, ctypes.create_string_buffer(b"\x02\0\0\0\x04\0\0\0\x04\0\0\0\x01\0\0\0" + bytes(56)), 72)),
    "perf": attempt(sys_("perf_event_open", ctypes.create_string_buffer(bytes(128)), 0, -1, -1, 0)),
    "sethostname": attempt(lambda: sys_("sethostname", os.uname().nodename.encode(), len(os.uname().nodename))()),
    "mknod_char": attempt(lambda: os.mknod(os.path.join(tmp, "null"), 0o020600, os.makedev(1, 3))),
    "mknod_fifo": attempt(lambda: os.mknod(os.path.join(tmp, "fifo"), 0o010600)),
    "caps": [hex(x) for x in caps.current()],
}
print(json.dumps(out))
"""


@unittest.skipUnless(
    sys.platform.startswith("linux") and os.uname().machine in seccomp.ARCHES,
    "the filter is for Linux on x86_64 and aarch64",
)
class KernelTest(unittest.TestCase):
    """The kernel's answers, in child processes, against a sacrificial process of the same uid (never the runner)."""

    def run_child(self, mode):
        import tempfile

        victim = subprocess.Popen([sys.executable, "-I", "-S", "-c", "import time; time.sleep(60)"])
        try:
            with tempfile.TemporaryDirectory() as tmp:
                r = subprocess.run(
                    [sys.executable, "-I", "-S", "-c", CHILD, GUEST_DIR, mode, str(victim.pid), tmp],
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
        finally:
            victim.kill()
            victim.wait()
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_control_unfiltered_the_same_uid_changes_another_process(self):
        out = self.run_child("control")
        for key in (
            "prlimit_other",
            "renice_other",
            "pin_other",
            "sched_other",
            "sched_param_other",
            "ioprio_other",
            "keyctl",
            "add_key",
            "prlimit_self",
            "renice_self",
            "pin_self",
            "mknod_fifo",
        ):
            self.assertEqual(out[key], "ok", key)
        if ROOT:
            for key in ("syslog", "bpf", "sethostname", "mknod_char"):
                self.assertEqual(out[key], "ok", key)

    def test_filtered_every_probe_is_refused_and_the_caller_itself_still_works(self):
        for mode in ("both", "processes"):
            out = self.run_child(mode)
            with self.subTest(mode=mode):
                for key in (
                    "prlimit_other",
                    "renice_other",
                    "renice_user",
                    "pin_other",
                    "sched_other",
                    "sched_param_other",
                    "ioprio_other",
                    "keyctl",
                    "add_key",
                    "syslog",
                    "bpf",
                    "perf",
                    "sethostname",
                    "mknod_char",
                ):
                    self.assertEqual(out[key], "EPERM", key)
                for key in (
                    "prlimit_self",
                    "setrlimit_self",
                    "renice_self",
                    "nice_self",
                    "pin_self",
                    "pin_own_pid",
                    "renice_own_pid",
                    "ioprio_self",
                    "mknod_fifo",
                ):
                    self.assertEqual(out[key], "ok", key)
                self.assertEqual(
                    out["caps"][:3], ["0x0", "0x0", "0x0"], "no effective, permitted or inheritable capability"
                )


class CapsTest(unittest.TestCase):
    """The capability drop on its own, as root and as anyone."""

    def run_py(self, code):
        r = subprocess.run(
            [sys.executable, "-I", "-S", "-c", "import sys; sys.path.insert(0, %r)\n" % GUEST_DIR + code],
            capture_output=True,
            text=True,
            timeout=30,
        )
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_every_set_is_empty_after_the_drop_and_root_cannot_win_them_back(self):
        out = self.run_py(
            "import caps, json, os, subprocess\n"
            "before = caps.current()\n"
            "after = caps.drop_all()\n"
            # An exec as uid 0 would have the kernel grant the full set again, without no_new_privs and securebits.
            "child = subprocess.run([sys.executable, '-I', '-S', '-c', 'import sys; sys.path.insert(0, %r); import caps; print(caps.current()[1])' % sys.path[0]], capture_output=True, text=True).stdout.strip()\n"
            "print(json.dumps({'before': before, 'after': after, 'child_permitted': int(child)}))\n"
        )
        self.assertEqual(out["after"][:3], [0, 0, 0])
        self.assertEqual(out["child_permitted"], 0, "an exec'd child has no capability either")
        if ROOT:
            self.assertNotEqual(out["before"][1], 0, "control: root held capabilities before")
            self.assertEqual(out["after"][3], 0, "root's bounding set is empty")
            self.assertEqual(
                out["after"][4], 0xEF, "NOROOT, NO_SETUID_FIXUP, NO_CAP_AMBIENT_RAISE and every lock; KEEP_CAPS off"
            )
        else:
            self.assertEqual(out["before"][:3], [0, 0, 0], "an unprivileged process starts with none")


# What the exec'd "installer" reports: its capabilities (capget, as /proc is denied) and a prlimit on the victim.
INSTALLER = r"""
import ctypes, json, resource, sys
libc = ctypes.CDLL(None, use_errno=True)
header, data = (ctypes.c_uint32 * 2)(0x20080522, 0), (ctypes.c_uint32 * 6)()
libc.capget(header, data)
try:
    resource.prlimit(int(sys.argv[1]), resource.RLIMIT_CPU, (3600, 3600))
    prlimit = "ok"
except PermissionError:
    prlimit = "EPERM"
print(json.dumps({"permitted": data[1] | data[4] << 32, "prlimit": prlimit}))
"""


@unittest.skipIf(ABI == 0, "the kernel offers no Landlock: %s" % WHY)
@unittest.skipUnless(os.uname().machine in seccomp.ARCHES, "the filter is for x86_64 and aarch64")
class InstallLauncherTest(unittest.TestCase):
    """confine_exec.py: the installer it execs holds no capability and cannot touch another process."""

    def run_installer(self, confined):
        victim = subprocess.Popen([sys.executable, "-I", "-S", "-c", "import time; time.sleep(60)"])
        try:
            program = [os.path.realpath(sys.executable), "-I", "-S", "-c", INSTALLER, str(victim.pid)]
            env = {"PATH": "/usr/bin:/bin"}
            if confined:
                env["PYISOLATE_LANDLOCK"] = json.dumps(
                    {"read_only": PYTHON_PREFIXES, "writable": ["/dev/null"], "network": False}
                )
                program = [sys.executable, "-I", "-S", os.path.join(GUEST_DIR, "confine_exec.py"), "--"] + program
            r = subprocess.run(program, env=env, capture_output=True, text=True, timeout=30)
        finally:
            victim.kill()
            victim.wait()
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_control_unconfined_the_installer_changes_another_process(self):
        out = self.run_installer(False)
        self.assertEqual(out["prlimit"], "ok")
        if ROOT:
            self.assertNotEqual(out["permitted"], 0, "root's installer holds capabilities unconfined")

    def test_confined_no_capability_and_no_prlimit_on_another_process(self):
        out = self.run_installer(True)
        self.assertEqual(out, {"permitted": 0, "prlimit": "EPERM"})


@unittest.skipIf(ABI == 0, "the kernel offers no Landlock: %s" % WHY)
@unittest.skipUnless(ROOT, "making a character device needs CAP_MKNOD: unprivileged, the control could not succeed")
class LandlockDeviceNodeTest(unittest.TestCase):
    """Landlock alone (no filter, capabilities kept) refuses a device node in a writable folder; unconfined, root makes it."""

    def make_node(self, confined):
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            code = (
                "import json, os, sys\n"
                "sys.path.insert(0, %r)\n"
                "import landlock\n"
                "if %r: landlock.confine(%r, [%r, '/dev/null'], True)\n"
                "try:\n"
                "    os.mknod(os.path.join(%r, 'null'), 0o020600, os.makedev(1, 3)); print('ok')\n"
                "except OSError as e:\n"
                "    print(type(e).__name__)\n"
            ) % (GUEST_DIR, confined, PYTHON_PREFIXES, tmp, tmp)
            r = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.strip()

    def test_control_unconfined_root_makes_it(self):
        self.assertEqual(self.make_node(False), "ok")

    def test_confined_make_char_is_granted_by_no_rule(self):
        self.assertEqual(self.make_node(True), "PermissionError")


# An "installer" whose build step leaves a setsid daemon behind (argv carries a token), then fails with 3.
LEAVES_DAEMON = r"""
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-I", "-S", "-c", "import time\nwhile True: time.sleep(1)", sys.argv[1]])
    os._exit(0)
os.wait()
sys.exit(3)
"""


def pids_with(token):
    found = []
    for name in os.listdir("/proc"):
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                if token.encode() in f.read().split(b"\0"):
                    found.append(int(name))
        except (OSError, ValueError):
            pass
    return found


@unittest.skipIf(ABI == 0, "the kernel offers no Landlock: %s" % WHY)
@unittest.skipUnless(os.uname().machine in seccomp.ARCHES, "the filter is for x86_64 and aarch64")
class InstallDaemonTest(unittest.TestCase):
    def run_leaving(self, confined):
        import uuid

        token = "pyisolate-install-daemon-" + uuid.uuid4().hex
        program = [os.path.realpath(sys.executable), "-I", "-S", "-c", LEAVES_DAEMON, token]
        env = {"PATH": "/usr/bin:/bin"}
        if confined:
            env["PYISOLATE_LANDLOCK"] = json.dumps(
                {"read_only": PYTHON_PREFIXES, "writable": ["/dev/null"], "network": False}
            )
            program = [sys.executable, "-I", "-S", os.path.join(GUEST_DIR, "confine_exec.py"), "--"] + program
        # Not captured: the daemon would hold the pipes open, and a read to EOF would wait for it forever.
        r = subprocess.run(program, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        time.sleep(0.2)
        left = pids_with(token)
        for pid in left:
            os.kill(pid, 9)
        return r.returncode, left

    def test_control_without_the_launcher_the_daemon_outlives_the_installer(self):
        code, left = self.run_leaving(False)
        self.assertEqual(code, 3)
        self.assertEqual(len(left), 1, "the probe leaves a daemon when nothing supervises it")

    def test_the_launcher_s_supervisor_kills_it_and_passes_the_exit_code_on(self):
        code, left = self.run_leaving(True)
        self.assertEqual(code, 3)
        self.assertEqual(left, [])


if __name__ == "__main__":
    unittest.main()
