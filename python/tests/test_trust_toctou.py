"""Landlock rules on descriptors the host pinned: a name swapped for a symlink after the pin changes nothing."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

from tests.landlock_support import ABI, GUEST_DIR, PYTHON_PREFIXES, WHY

# The child: rules on inherited descriptors (ints) and on names; then what reading each path gives, and whether the
# descriptors are still open (they must not be: extension code never gets them).
CHILD = r"""
import json, os, sys
sys.path.insert(0, sys.argv[1])
import landlock
spec = json.loads(sys.argv[2])
landlock.confine(spec["read_only"], [], True)

def attempt(path):
    try:
        return open(path).read()
    except OSError as e:
        return e.__class__.__name__

def is_open(fd):
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False

print(json.dumps({"by_name": attempt(spec["by_name"]), "moved": attempt(spec["moved"]), "open": [is_open(fd) for fd in spec["fds"]]}))
"""


@unittest.skipIf(ABI == 0, "the kernel offers no Landlock: %s" % WHY)
class PinnedRulesTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        root = self.tmp.name
        self.granted = os.path.join(root, "granted")
        self.ssh = os.path.join(root, "home", ".ssh")
        os.makedirs(self.granted)
        os.makedirs(self.ssh)
        with open(os.path.join(self.granted, "marker.txt"), "w") as f:
            f.write("checked")
        with open(os.path.join(self.ssh, "marker.txt"), "w") as f:
            f.write("key")

    def tearDown(self):
        self.tmp.cleanup()

    def run_child(self, rule):
        fds = [rule] if isinstance(rule, int) else []
        spec = {
            "read_only": PYTHON_PREFIXES + [GUEST_DIR, rule],
            "by_name": os.path.join(self.granted, "marker.txt"),
            "moved": os.path.join(self.granted + ".checked", "marker.txt"),
            "fds": fds,
        }
        r = subprocess.run(
            [sys.executable, "-I", "-S", "-c", CHILD, GUEST_DIR, json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=60,
            pass_fds=fds,
        )
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def swap(self):
        os.rename(self.granted, self.granted + ".checked")
        os.symlink(os.path.relpath(self.ssh, os.path.dirname(self.granted)), self.granted)

    def test_a_rule_on_a_pinned_descriptor_covers_the_checked_folder_and_not_the_swapped_in_target(self):
        fd = os.open(self.granted, os.O_PATH | os.O_NOFOLLOW)
        try:
            self.swap()
            out = self.run_child(fd)
        finally:
            os.close(fd)
        self.assertEqual(out, {"by_name": "PermissionError", "moved": "checked", "open": [False]})

    def test_control_a_rule_by_name_after_the_swap_grants_the_target(self):
        self.swap()
        out = self.run_child(self.granted)
        self.assertEqual(out["by_name"], "key")
        self.assertEqual(out["moved"], "PermissionError")


if __name__ == "__main__":
    unittest.main()
