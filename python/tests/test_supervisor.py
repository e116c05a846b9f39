"""The guest's supervisor: no process the extension starts outlives it, whichever way it ends; its exit reads the same."""

import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from tests.landlock_support import GUEST_DIR

sys.path.insert(0, GUEST_DIR)
try:
    import supervisor  # noqa: E402  (by path, as the other guest helpers)
finally:
    sys.path.remove(GUEST_DIR)

# The "extension": under the supervisor, it starts a setsid double-fork daemon that writes its pid, then ends as told.
GUEST = r"""
import os, signal, sys, time
sys.path.insert(0, sys.argv[1])
import supervisor
pidfile, how = sys.argv[2], sys.argv[3]
supervisor.fork_supervised()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a daemon that shrugs off SIGTERM
        with open(pidfile + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(pidfile + ".tmp", pidfile)
        while True:
            time.sleep(1)
    os._exit(0)
while not os.path.exists(pidfile):
    time.sleep(0.01)
print(os.getpid(), flush=True)
if how == "exit":
    os._exit(7)
if how == "segv":
    os.kill(os.getpid(), signal.SIGSEGV)
time.sleep(60)
"""

# A stand-in host that starts the guest with fd 3 and fd 4 and reports the pids before it is SIGKILLed.
HOST = r"""
import os, socket, subprocess, sys, time
a, b = socket.socketpair()
c, d = socket.socketpair()
def channels():  # b and d become the guest's fd 3 and fd 4, as the host's spawn makes them (a=3 b=4 c=5 d=6 here)
    os.dup2(b.fileno(), 3)
    os.dup2(d.fileno(), 4)
p = subprocess.Popen([sys.executable, "-I", "-S", "-c", sys.argv[1], sys.argv[2], sys.argv[3], "wait"], stdout=subprocess.PIPE,
                     pass_fds=(3, 4), preexec_fn=channels)
print(p.pid, p.stdout.readline().decode().strip(), flush=True)
time.sleep(60)
"""


def read_pid(path):
    with open(path) as f:
        return int(f.read())


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_dead(pid, seconds=5.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not alive(pid):
            return True
        time.sleep(0.02)
    return False


class DescendantsTest(unittest.TestCase):
    def test_the_tree_below_a_pid_parents_first(self):
        parents = {10: 1, 11: 10, 12: 11, 13: 10, 20: 1, 21: 20}
        self.assertEqual(set(supervisor.descendants(10, parents)), {11, 12, 13})
        order = supervisor.descendants(10, parents)
        self.assertLess(order.index(11), order.index(12))
        self.assertEqual(supervisor.descendants(12, parents), [])


@unittest.skipUnless(sys.platform.startswith("linux"), "pidfds and /proc are Linux's")
class KillTest(unittest.TestCase):
    def test_a_pid_whose_parent_is_outside_the_tree_is_spared_and_one_inside_is_killed(self):
        victim = subprocess.Popen([sys.executable, "-I", "-S", "-c", "import time; time.sleep(60)"])
        try:
            supervisor._kill(victim.pid, {1})  # as if the pid had been reused by a process of someone else's
            time.sleep(0.1)
            self.assertIsNone(victim.poll(), "a stranger is never killed")
            supervisor._kill(victim.pid, {os.getpid()})
            self.assertEqual(victim.wait(5), -signal.SIGKILL)
        finally:
            victim.kill()
            victim.wait()


@unittest.skipUnless(sys.platform.startswith("linux"), "prctl and /proc are Linux's")
class SupervisorTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.pidfile = os.path.join(self.tmp.name, "daemon.pid")

    def tearDown(self):
        if os.path.exists(self.pidfile):
            pid = read_pid(self.pidfile)
            if alive(pid):
                os.kill(pid, signal.SIGKILL)  # a failed test must not leave the daemon behind
        self.tmp.cleanup()

    def start(self, how):
        p = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", GUEST, GUEST_DIR, self.pidfile, how], stdout=subprocess.PIPE, text=True
        )
        self.addCleanup(p.stdout.close)
        child = int(p.stdout.readline())
        return p, child, read_pid(self.pidfile)

    def test_control_without_the_supervisor_the_daemon_outlives_its_extension(self):
        p = subprocess.Popen(
            [
                sys.executable,
                "-I",
                "-S",
                "-c",
                GUEST.replace("supervisor.fork_supervised()", ""),
                GUEST_DIR,
                self.pidfile,
                "exit",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.addCleanup(p.stdout.close)
        p.stdout.readline()
        self.assertEqual(p.wait(10), 7)
        daemon = read_pid(self.pidfile)
        time.sleep(0.2)
        self.assertTrue(alive(daemon), "the probe's daemon escapes when nothing supervises it")

    def test_the_extension_exits_the_daemon_dies_and_the_exit_code_comes_through(self):
        p, child, daemon = self.start("exit")
        self.assertEqual(p.wait(10), 7)
        self.assertTrue(wait_dead(daemon), "the daemon outlived the extension")
        self.assertFalse(alive(child))

    def test_a_signal_that_killed_the_extension_is_the_supervisors_too(self):
        p, _, daemon = self.start("segv")
        self.assertEqual(p.wait(10), -signal.SIGSEGV)
        self.assertTrue(wait_dead(daemon))

    def test_sigterm_to_the_supervisor_kills_the_extension_and_the_daemon(self):
        p, child, daemon = self.start("wait")
        started = time.monotonic()
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(10), -signal.SIGTERM)
        took = time.monotonic() - started
        self.assertTrue(wait_dead(daemon) and wait_dead(child))
        sys.stderr.write("\n  supervisor: SIGTERM to every descendant gone in %.1f ms\n" % (took * 1000))

    def test_the_supervisor_holds_neither_channel_and_a_host_killed_outright_takes_everything_along(self):
        host = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", HOST, GUEST, GUEST_DIR, self.pidfile], stdout=subprocess.PIPE, text=True
        )
        self.addCleanup(host.stdout.close)
        sup, child = (int(x) for x in host.stdout.readline().split())
        daemon = read_pid(self.pidfile)

        # The supervisor closes them right after the fork, while the extension starts: wait for that, bounded.
        def supervisor_fds():
            return {int(fd) for fd in os.listdir("/proc/%d/fd" % sup)}

        end = time.monotonic() + 5.0
        while supervisor_fds() & {3, 4} and time.monotonic() < end:
            time.sleep(0.02)
        fds = supervisor_fds()
        self.assertFalse(fds & {3, 4}, "the supervisor closed the RPC socket and the fd channel: %s" % sorted(fds))
        self.assertTrue({3, 4} <= {int(fd) for fd in os.listdir("/proc/%d/fd" % child)}, "the extension has both")
        host.kill()
        host.wait()
        for pid in (sup, child, daemon):
            self.assertTrue(wait_dead(pid), "pid %d outlived the SIGKILLed host" % pid)


if __name__ == "__main__":
    unittest.main()
