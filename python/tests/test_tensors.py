"""Guest tensor plumbing with the stdlib only: segments, the fd channel, fds in frames (numpy parts skip without it)."""

import asyncio
import fcntl
import gc
import os
import socket
import unittest

from pyisolate._guest import segments, tensors
from pyisolate._guest.codec import Decoder, Encoder
from pyisolate._guest.fdchannel import FdChannel
from pyisolate._guest.framing import ProtocolError

try:
    import numpy
except ImportError:
    numpy = None


class SegmentTest(unittest.TestCase):
    def test_allocate_seals_and_finds_by_address(self):
        seg = segments.allocate(4096)
        seals = fcntl.fcntl(seg.fd, 1034)  # F_GET_SEALS
        self.assertTrue(seals & segments.F_SEAL_SHRINK and seals & segments.F_SEAL_GROW)
        self.assertIs(segments.containing(seg.address + 100, 10), seg)
        self.assertIsNone(segments.containing(seg.address + 4090, 10))

    def test_adopt_reuses_a_live_mapping_of_the_same_file(self):
        seg = segments.allocate(4096)
        again = segments.adopt(os.dup(seg.fd), 4096)
        self.assertIs(again, seg)

    def test_adopt_refuses_a_file_smaller_than_declared(self):
        seg = segments.allocate(4096)
        with self.assertRaises(ValueError):
            segments.adopt(os.dup(seg.fd), 8192)

    def test_collection_closes_the_fd_and_reports_the_inode(self):
        sent = []
        loop = asyncio.new_event_loop()
        try:
            segments.releases.bind(loop, sent.extend)
            seg = segments.allocate(4096)
            fd, ino = seg.fd, seg.ino
            del seg
            gc.collect()
            loop.run_until_complete(asyncio.sleep(0))
            self.assertEqual(sent, [ino])
            with self.assertRaises(OSError):
                os.fstat(fd)
        finally:
            segments.releases.unbind()
            loop.close()


class FdChannelTest(unittest.TestCase):
    def test_fds_cross_in_order_and_a_missing_one_is_a_protocol_error(self):
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        loop = asyncio.new_event_loop()
        try:
            sender, receiver = FdChannel(a.detach(), loop), FdChannel(b.detach(), loop)
            segs = [segments.allocate(4096) for _ in range(300)]
            written = []
            sender.submit([s.fd for s in segs], segs, lambda: written.append(1))
            self.assertEqual(written, [1])
            got = receiver.receive(300)
            self.assertEqual([os.fstat(fd).st_ino for fd in got], [s.ino for s in segs])
            for fd in got:
                os.close(fd)
            with self.assertRaisesRegex(ProtocolError, "announced 1 file descriptors but 0 arrived"):
                receiver.receive(1)
            sender.close()
            receiver.close()
        finally:
            loop.close()


class EncoderTest(unittest.TestCase):
    def test_fds_are_collected_once_per_frame(self):
        enc = Encoder(lambda fn: 1, shm=True)
        seg = segments.allocate(64)
        self.assertEqual(enc.add_fd(seg.fd, seg), 0)
        self.assertEqual(enc.add_fd(seg.fd, seg), 0)
        self.assertEqual(enc.fds, [seg.fd])
        self.assertTrue(enc.tagged)

    def test_untaken_fds_are_closed(self):
        r, w = os.pipe()
        Decoder([], None, [r]).close()
        with self.assertRaises(OSError):
            os.fstat(r)
        os.close(w)


class MalformedDescriptorTest(unittest.TestCase):
    def test_every_malformed_payload_is_a_value_error(self):
        good = {"dtype": "float32", "shape": [2], "strides": [1], "offset": 0, "storage": {"kind": "shm", "size": 8}}
        bad = {
            "dtype a list (unhashable)": {"dtype": ["float32"]},
            "dtype an object": {"dtype": {"a": 1}},
            "dtype unknown": {"dtype": "float8"},
            "shape not a list": {"shape": 2},
            "a negative extent": {"shape": [-1]},
            "a bool extent": {"shape": [True]},
            "a float stride": {"strides": [1.0]},
            "strides of another rank": {"strides": [1, 1]},
            "a negative offset": {"offset": -4},
            "a float offset": {"offset": 1.5},
            "no storage": {"storage": None},
            "shm without a size": {"storage": {"kind": "shm"}},
        }
        frame = tensors.ReceivedFrame([], [])
        for name, change in bad.items():
            with self.subTest(name), self.assertRaises(ValueError):
                tensors.decode({**good, **change}, frame)
        with self.assertRaises(ValueError):
            tensors.decode(["not", "an", "object"], frame)


@unittest.skipIf(numpy is None, "numpy is not installed for this interpreter (the end-to-end tests cover it)")
class NumpyTest(unittest.TestCase):
    def test_descriptors_are_built_in_wire_order(self):
        wire_order = ["dtype", "shape", "strides", "offset", "storage", "framework"]
        self.assertEqual(list(Encoder(lambda fn: 1, shm=True).encode(numpy.ones(3))["$tensor"]), wire_order)
        self.assertEqual(list(Encoder(lambda fn: 1, shm=False).encode(numpy.ones(3))["$tensor"]), wire_order)

    def test_an_array_in_a_segment_goes_by_fd_an_ordinary_one_is_copied(self):
        enc = Encoder(lambda fn: 1, shm=True)
        shared = tensors.shared_empty([4, 4], "float32")
        desc = enc.encode(shared.T)["$tensor"]
        self.assertEqual((desc["strides"], desc["storage"]["kind"]), ([1, 4], "shm"))
        plain = enc.encode(numpy.arange(3)[::-1])["$tensor"]
        self.assertEqual((plain["strides"], plain["storage"]["fd"]), ([1], 1))

    def test_copy_mode_uses_one_attachment(self):
        enc = Encoder(lambda fn: 1, shm=False)
        desc = enc.encode(numpy.ones((2, 3), "int16").T)["$tensor"]
        self.assertEqual(desc["storage"], {"kind": "bytes", "attachment": 0})
        back = Decoder(enc.attachments, None).decode({"$tensor": desc})
        self.assertTrue((back == numpy.ones((3, 2), "int16")).all())


if __name__ == "__main__":
    unittest.main()
