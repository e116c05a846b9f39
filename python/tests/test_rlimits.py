"""The guest's rlimits: what the host names is applied in a fresh process, only ever lowered, and acts as the kernel's."""

import errno
import json
import os
import signal
import subprocess
import sys
import tempfile
import unittest

from tests.landlock_support import GUEST_DIR

# A child that applies the host's variable through rlimits.from_env(), then does what argv[2] says.
CHILD = r"""
import json, os, resource, sys, time
sys.path.insert(0, sys.argv[1])
import rlimits
rlimits.from_env()
what = sys.argv[2]
if what == "show":
    print(json.dumps({n: list(resource.getrlimit(getattr(resource, n))) for n in ("RLIMIT_CPU", "RLIMIT_NOFILE", "RLIMIT_FSIZE", "RLIMIT_DATA")}))
elif what == "burn":
    while True:
        pass
elif what == "fsize":
    try:
        with open(sys.argv[3], "wb") as f:
            f.write(b"x" * (3 * 1024 * 1024))
            f.flush()
    except OSError as e:
        print(e.errno)
elif what == "alloc":
    try:
        block = b"x" * (512 * 1024 * 1024)
        print("allocated")
    except MemoryError:
        print("MemoryError")
"""


def run(limits, *argv, timeout=30):
    env = dict(os.environ)
    env.pop("PYISOLATE_RLIMITS", None)
    if limits is not None:
        env["PYISOLATE_RLIMITS"] = json.dumps(limits)
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", CHILD, GUEST_DIR, *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class RlimitsTest(unittest.TestCase):
    def test_applies_what_the_host_names(self):
        mib = 1024 * 1024
        out = run(
            {
                "RLIMIT_CPU": [5, 6],
                "RLIMIT_NOFILE": [64, 64],
                "RLIMIT_FSIZE": [mib, mib],
                "RLIMIT_DATA": [256 * mib, 256 * mib],
            },
            "show",
        )
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(
            json.loads(out.stdout),
            {
                "RLIMIT_CPU": [5, 6],
                "RLIMIT_NOFILE": [64, 64],
                "RLIMIT_FSIZE": [mib, mib],
                "RLIMIT_DATA": [256 * mib, 256 * mib],
            },
        )

    def test_never_raises_a_limit_past_what_the_process_has(self):
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        out = run({"RLIMIT_NOFILE": [hard * 4, hard * 4]}, "show")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(json.loads(out.stdout)["RLIMIT_NOFILE"][1], hard)

    def test_refuses_an_unknown_name_or_a_bad_value(self):
        for bad in (
            {"RLIMIT_RTPRIO": [1, 1]},
            {"RLIMIT_CPU": [1]},
            {"RLIMIT_CPU": [-1, 1]},
            {"RLIMIT_CPU": [True, 1]},
            [1],
        ):
            out = run(bad, "show")
            self.assertNotEqual(out.returncode, 0, bad)
            self.assertIn("Error", out.stderr)

    def test_cpu_limit_ends_a_busy_loop_with_sigxcpu_and_without_it_the_loop_runs_on(self):
        out = run({"RLIMIT_CPU": [1, 2]}, "burn")
        self.assertEqual(out.returncode, -signal.SIGXCPU)
        with self.assertRaises(subprocess.TimeoutExpired):
            run(None, "burn", timeout=2)  # the control: nothing stops it

    def test_fsize_limit_fails_a_write_past_it_with_efbig(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "f")
            out = run({"RLIMIT_FSIZE": [1024 * 1024, 1024 * 1024]}, "fsize", path)
            self.assertEqual(out.stdout.strip(), str(errno.EFBIG), out.stderr)
            self.assertEqual(os.path.getsize(path), 1024 * 1024)
            out = run(None, "fsize", path)
            self.assertEqual(out.stdout.strip(), "", out.stderr)
            self.assertEqual(os.path.getsize(path), 3 * 1024 * 1024)

    def test_data_limit_fails_an_allocation_past_it_with_memory_error(self):
        self.assertEqual(run({"RLIMIT_DATA": [128 * 1024 * 1024] * 2}, "alloc").stdout.strip(), "MemoryError")
        self.assertEqual(run(None, "alloc").stdout.strip(), "allocated")


if __name__ == "__main__":
    unittest.main()
