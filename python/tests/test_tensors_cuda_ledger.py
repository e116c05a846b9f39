"""The guest's side of the host's CUDA book, where no GPU is needed: keys, refusals, releases."""

import os
import subprocess
import sys
import unittest
from unittest import mock

from pyisolate._guest import tensors_cuda

_RUNTIME_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(tensors_cuda.__file__ + "/..")))


class _NowLoop:
    def call_soon_threadsafe(self, fn):
        fn()


def _desc(**ipc) -> dict:
    base = {
        "handle": "ab" * 64,
        "storageOffset": 0,
        "event": "",
        "eventSyncRequired": False,
        "cuda": "13.0",
        "origin": "not-this-process",
        "export": 1,
    }
    base.update(ipc)
    return {
        "dtype": "float32",
        "shape": [4],
        "strides": [1],
        "offset": 0,
        "framework": "torch",
        "storage": {"kind": "cuda", "device": 0, "size": 16, "ipc": base},
    }


class CudaLedgerGuestTest(unittest.TestCase):
    def setUp(self):
        self.released = []
        tensors_cuda.releases.bind(_NowLoop(), self.released.extend)
        self.addCleanup(tensors_cuda.releases.unbind)

    def test_a_delivery_that_cannot_be_opened_is_released_at_once(self):
        with mock.patch.dict(sys.modules, {"torch": None}):  # no torch in this extension
            with self.assertRaisesRegex(RuntimeError, "torch is not installed"):
                tensors_cuda.decode(_desc(key="a (pid 1)#1"))
        self.assertEqual(self.released, ["a (pid 1)#1"])

    def test_a_descriptor_from_elsewhere_without_the_hosts_key_is_refused(self):
        with self.assertRaisesRegex(ValueError, "host's key"):
            tensors_cuda.decode(_desc())
        self.assertEqual(self.released, [])

    def test_a_tensor_of_ours_that_the_host_released_cannot_come_back(self):
        with self.assertRaisesRegex(RuntimeError, "released"):
            tensors_cuda.decode(_desc(origin=tensors_cuda.ORIGIN, export=10**9))

    def test_a_failed_open_across_pid_namespaces_says_why(self):
        self.assertEqual(tensors_cuda.pid_namespace(), os.readlink("/proc/self/ns/pid"))
        self.assertIsNone(tensors_cuda.cross_namespace_hint({"pidns": tensors_cuda.pid_namespace()}))
        self.assertIsNone(tensors_cuda.cross_namespace_hint({}), "a producer that did not say")
        hint = tensors_cuda.cross_namespace_hint({"pidns": "pid:[1]"})
        self.assertIn("another PID namespace", hint)
        self.assertIn("landlock", hint)

    def test_release_exports_ignores_what_it_does_not_know(self):
        before = tensors_cuda.exported_count()
        tensors_cuda.release_exports([10**9, "x", None])
        self.assertEqual(tensors_cuda.exported_count(), before)

    def test_each_process_has_its_own_origin(self):
        other = subprocess.run(
            [sys.executable, "-c", "from pyisolate._guest import tensors_cuda as t; print(t.ORIGIN)"],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONPATH": _RUNTIME_ROOT},
        ).stdout.strip()
        self.assertEqual(len(tensors_cuda.ORIGIN), 16)
        self.assertNotEqual(other, tensors_cuda.ORIGIN)


if __name__ == "__main__":
    unittest.main()
