"""The install launcher: confine with the rules from the environment, then exec the installer; never run it unconfined."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

from tests.landlock_support import ABI, GUEST_DIR, PYTHON_PREFIXES, SECRET, WHY, landlock, plant_secret  # noqa: F401

LAUNCHER = os.path.join(GUEST_DIR, "confine_exec.py")

# What the exec'd "installer" reports: where it started, whether the rules variable reached it, what it could do.
PROGRAM = r"""
import json, os, socket, sys
def attempt(fn):
    try:
        fn()
        return "ok"
    except PermissionError:
        return "denied"
print(json.dumps({
    "cwd": os.getcwd(),
    "rules_env": "PYISOLATE_LANDLOCK" in os.environ,
    "read_secret": attempt(lambda: open(sys.argv[1]).read()),
    "write_cwd": attempt(lambda: open("built.txt", "w").write("x")),
    "write_outside": attempt(lambda: open(sys.argv[2], "w").write("x")),
    "unix_socket": attempt(lambda: socket.socket(socket.AF_UNIX).close()),
    "udp_socket": attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()),
    "socketpair": attempt(lambda: [s.close() for s in socket.socketpair()]),
}))
"""


class ConfineExecTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        root = self.tmp.name
        self.build = os.path.join(root, "build")
        self.home = os.path.join(root, "home")
        os.mkdir(self.build)
        os.mkdir(self.home)
        self.secret = plant_secret(self.home)
        self.outside = os.path.join(root, "planted.txt")

    def tearDown(self):
        self.tmp.cleanup()

    def launch(self, argv, rules):
        env = {"PATH": os.environ.get("PATH", "/usr/bin")}
        if rules is not None:
            env["PYISOLATE_LANDLOCK"] = json.dumps(rules)
        return subprocess.run(
            [sys.executable, "-I", "-S", LAUNCHER] + argv, env=env, capture_output=True, text=True, timeout=30
        )

    def test_without_rules_the_command_never_runs(self):
        r = self.launch(["--", sys.executable, "-c", "open(%r, 'w')" % self.outside], None)
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn("refusing to run", r.stderr)
        self.assertFalse(os.path.exists(self.outside))

    def test_a_relative_program_is_a_usage_error(self):
        r = self.launch(["--", "python3", "-c", "pass"], {"read_only": [], "writable": [], "network": True})
        self.assertEqual(r.returncode, 2)

    @unittest.skipIf(ABI == 0, "the kernel offers no Landlock: %s" % WHY)
    def test_the_exec_d_program_runs_confined_in_the_build_folder(self):
        rules = {
            "read_only": PYTHON_PREFIXES,
            "writable": [self.build, "/dev/null"],
            "network": True,
            "cwd": self.build,
        }
        r = self.launch(["--", os.path.realpath(sys.executable), "-S", "-c", PROGRAM, self.secret, self.outside], rules)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(out["cwd"], self.build)
        self.assertFalse(out["rules_env"], "the rules variable is removed before the exec")
        self.assertEqual(out["read_secret"], "denied")
        self.assertEqual(out["write_cwd"], "ok")
        self.assertEqual(out["write_outside"], "denied")
        self.assertFalse(os.path.exists(self.outside))
        # The seccomp filter came through the exec too: no Unix socket (by path, Landlock would let it connect).
        self.assertEqual(out["unix_socket"], "denied")
        self.assertEqual(out["udp_socket"], "ok", "the network is on")
        self.assertEqual(out["socketpair"], "ok")
        # The control: the same reads and writes work unconfined.
        with open(self.secret) as f:
            self.assertEqual(f.read(), SECRET)

    @unittest.skipIf(ABI == 0, "the kernel offers no Landlock: %s" % WHY)
    def test_without_the_network_no_socket_but_a_unix_pair(self):
        rules = {
            "read_only": PYTHON_PREFIXES,
            "writable": [self.build, "/dev/null"],
            "network": False,
            "unix_sockets": False,
            "cwd": self.build,
        }
        r = self.launch(["--", os.path.realpath(sys.executable), "-S", "-c", PROGRAM, self.secret, self.outside], rules)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual((out["unix_socket"], out["udp_socket"], out["socketpair"]), ("denied", "denied", "ok"))

    @unittest.skipIf(ABI == 0, "the kernel offers no Landlock: %s" % WHY)
    def test_where_the_host_says_there_is_no_filter_landlock_runs_alone(self):
        """An architecture the filter does not know: files stay confined, sockets are Landlock's alone."""
        rules = {
            "read_only": PYTHON_PREFIXES,
            "writable": [self.build, "/dev/null"],
            "network": False,
            "socket_filter": False,
            "cwd": self.build,
        }
        r = self.launch(["--", os.path.realpath(sys.executable), "-S", "-c", PROGRAM, self.secret, self.outside], rules)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual((out["read_secret"], out["write_outside"]), ("denied", "denied"))
        self.assertEqual((out["unix_socket"], out["udp_socket"]), ("ok", "ok"), "the gaps the filter closes elsewhere")


if __name__ == "__main__":
    unittest.main()
