"""Landlock self-confinement: a confined child Python can read what it was given and nothing else."""

import os
import socket
import subprocess
import sys
import tempfile
import threading
import unittest

from tests.landlock_support import ABI, GUEST_DIR, PYTHON_PREFIXES, SECRET, WHY, landlock, plant_secret  # noqa: F401

# The child: import the helper, confine, then report what each attempt did, one line per attempt.
CHILD = r"""
import json, socket, sys
sys.path.insert(0, sys.argv[1])
import landlock
spec = json.loads(sys.argv[2])
abi = landlock.confine(spec["read_only"], spec["writable"], spec["network"])

def attempt(fn):
    try:
        fn()
        return "ok"
    except PermissionError:
        return "denied"
    except OSError as e:
        return "error:%s" % e.__class__.__name__

def connect():
    s = socket.create_connection(("127.0.0.1", spec["port"]), timeout=5)
    s.close()

out = {
    "abi": abi,
    "read_allowed": attempt(lambda: open(spec["allowed_file"]).read()),
    "read_secret": attempt(lambda: open(spec["secret"]).read()),
    "list_home": attempt(lambda: __import__("os").listdir(spec["home"])),
    "write_readonly": attempt(lambda: open(spec["allowed_dir"] + "/new.txt", "w").write("x")),
    "write_writable": attempt(lambda: open(spec["writable_dir"] + "/new.txt", "w").write("x")),
    "connect": attempt(connect),
}
print(json.dumps(out))
"""


@unittest.skipIf(ABI == 0, "the kernel offers no Landlock: %s" % WHY)
class LandlockTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        root = self.tmp.name
        self.home = os.path.join(root, "home")
        self.allowed = os.path.join(root, "extension")
        self.writable = os.path.join(root, "data")
        for d in (self.home, self.allowed, self.writable):
            os.mkdir(d)
        self.secret = plant_secret(self.home)
        self.allowed_file = os.path.join(self.allowed, "module.py")
        with open(self.allowed_file, "w") as f:
            f.write("VALUE = 1\n")
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(4)
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            conn.close()

    def tearDown(self):
        self.server.close()
        self.tmp.cleanup()

    def run_child(self, network):
        import json

        spec = {
            "read_only": PYTHON_PREFIXES + [GUEST_DIR, self.allowed],
            "writable": [self.writable],
            "network": network,
            "port": self.port,
            "allowed_file": self.allowed_file,
            "allowed_dir": self.allowed,
            "writable_dir": self.writable,
            "secret": self.secret,
            "home": self.home,
        }
        # -S: no site processing, so nothing from a site directory runs before the confinement.
        r = subprocess.run(
            [sys.executable, "-S", "-c", CHILD, GUEST_DIR, json.dumps(spec)], capture_output=True, text=True, timeout=30
        )
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_confined_child_reads_only_what_it_was_given(self):
        out = self.run_child(network=False)
        self.assertEqual(out["abi"], ABI)
        self.assertEqual(out["read_allowed"], "ok")
        self.assertEqual(out["read_secret"], "denied")
        self.assertEqual(out["list_home"], "denied")
        self.assertEqual(out["write_readonly"], "denied")
        self.assertEqual(out["write_writable"], "ok")
        if ABI >= 4:
            self.assertEqual(out["connect"], "denied")

    def test_network_allowed_when_asked(self):
        out = self.run_child(network=True)
        self.assertEqual(out["connect"], "ok")
        self.assertEqual(out["read_secret"], "denied")

    def test_unconfined_control_can_read_the_secret(self):
        # The same attempt without Landlock succeeds: the test proves the confinement, not a broken attack.
        with open(self.secret) as f:
            self.assertEqual(f.read(), SECRET)

    def test_abi_version_is_positive(self):
        self.assertGreaterEqual(landlock.abi_version(), 1)


if __name__ == "__main__":
    unittest.main()
