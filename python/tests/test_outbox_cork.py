"""The outbox's cork: a burst of frames leaves in one write, in order, and large attachments are never joined."""

from __future__ import annotations

import unittest

from pyisolate._guest.outbox import Outbox

from .peers import CaptureTransport


class _Counting(CaptureTransport):
    def __init__(self):
        super().__init__()
        self.writes = []

    def write(self, chunk):
        self.writes.append(len(memoryview(chunk).cast("B")))
        super().write(chunk)


class OutboxCorkTest(unittest.TestCase):
    def setUp(self):
        self.transport = _Counting()
        self.out = Outbox(self.transport, 1 << 30)

    def test_small_frames_written_while_corked_leave_in_one_write_at_uncork(self):
        self.out.cork()
        for i in range(50):
            self.out.write([b"frame%d;" % i])
        self.assertEqual(self.transport.writes, [])
        self.out.uncork()
        self.assertEqual(len(self.transport.writes), 1)
        self.assertEqual(self.transport.data, b"".join(b"frame%d;" % i for i in range(50)))

    def test_a_large_attachment_between_small_chunks_keeps_the_order_and_is_written_as_it_is(self):
        large = bytes(range(256)) * 1024  # 256 KiB
        self.out.cork()
        self.out.write([b"header;", large, b"tail;"])
        self.out.write([b"next;"])
        self.out.uncork()
        self.assertEqual(self.transport.data, b"header;" + large + b"tail;next;")
        self.assertIn(len(large), self.transport.writes)  # not copied into a joined chunk

    def test_an_uncorked_outbox_writes_each_chunk_at_once(self):
        self.out.write([b"a", b"b"])
        self.assertEqual(self.transport.writes, [1, 1])

    def test_a_cork_past_its_size_bound_flushes_without_waiting_for_uncork(self):
        self.out.cork()
        for _ in range(10):
            self.out.write([b"x" * 60_000])
        self.assertGreater(len(self.transport.data), 0)
        self.out.uncork()
        self.assertEqual(self.transport.data, b"x" * 600_000)


if __name__ == "__main__":
    unittest.main()
