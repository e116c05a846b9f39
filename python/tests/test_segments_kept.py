"""Segments kept for the host: they travel by id alone, and an id the host never gave is refused."""

import asyncio
import gc
import os
import unittest

from pyisolate._guest import segments, tensors
from pyisolate._guest.codec import Encoder
from pyisolate._guest.tensor_layout import shm_storage

from .peers import BoundReleases


def _desc(storage, nbytes=16):
    return {"dtype": "uint8", "shape": [nbytes], "strides": [1], "offset": 0, "framework": "numpy", "storage": storage}


class KeptTest(unittest.TestCase):
    def test_a_received_segment_is_kept_and_named_by_id(self):
        with BoundReleases():
            seg = segments.allocate(4096)
            frame = tensors.ReceivedFrame([os.dup(seg.fd)], [])
            got = frame.segment(0, 4096)
            self.assertIs(segments.kept(got.ino), got)
            self.assertIs(tensors.ReceivedFrame.named(got.ino, 4096), got)
            enc = Encoder(lambda fn: 0, True)
            self.assertEqual(shm_storage(got, enc), {"kind": "shm", "size": 4096, "id": got.ino})
            self.assertEqual(enc.fds, [], "no fd for a kept segment")

    def test_an_unknown_id_or_too_many_bytes_is_refused(self):
        with BoundReleases():
            with self.assertRaises(ValueError):
                tensors.ReceivedFrame.named(123456789, 16)
            with self.assertRaises(ValueError):
                tensors.ReceivedFrame.named("1", 16)
            seg = segments.allocate(4096)
            segments.keep(seg)
            with self.assertRaises(ValueError):
                tensors.ReceivedFrame.named(seg.ino, 8192)

    def test_a_descriptor_without_fd_names_a_kept_segment(self):
        try:
            import numpy  # noqa: F401
        except ImportError:
            self.skipTest("numpy is not installed")
        with BoundReleases():
            seg = segments.allocate(4096)
            segments.keep(seg)
            frame = tensors.ReceivedFrame([], [])
            arr = tensors.decode(_desc({"kind": "shm", "id": seg.ino, "size": 4096}), frame)
            arr[0] = 7
            self.assertEqual(seg[0], 7)
            with self.assertRaises(ValueError):
                tensors.decode(_desc({"kind": "shm", "id": seg.ino + 1, "size": 4096}), frame)

    def test_forget_lets_the_last_array_release_it(self):
        with BoundReleases() as bound:
            seg = segments.allocate(4096)
            ino = seg.ino
            segments.keep(seg)
            del seg
            gc.collect()
            self.assertIsNotNone(segments.kept(ino), "kept while the host holds it")
            segments.forget([ino])
            gc.collect()
            self.assertIsNone(segments.kept(ino))
            bound.loop.run_until_complete(asyncio.sleep(0))
            self.assertEqual(bound.sent, [[ino]])

    def test_nothing_is_kept_without_a_host(self):
        seg = segments.allocate(4096)
        segments.keep(seg)
        self.assertIsNone(segments.kept(seg.ino))


if __name__ == "__main__":
    unittest.main()
