"""The guest's pool of memfds for the large bytes it sends: what a lent memfd holds and its seals, reuse once the
host hands a number back, the limits, the idle trim, and a frame that is never sent giving its memfds back."""

import asyncio
import fcntl
import os
import unittest
from unittest import mock

from pyisolate._guest import bytes_fd, bytes_pool
from pyisolate._guest.bytes_pool import BytesPool
from pyisolate._guest.codec import Encoder
from pyisolate._guest.outbox import Outbox

from .peers import CaptureTransport

MiB = 1024 * 1024


def flat(data) -> memoryview:
    return memoryview(data).cast("B")


class _Loop:
    """Enough of an event loop for a pool whose trim is not under test: timers are noted, never run."""

    def __init__(self):
        self.timers = []

    def call_later(self, delay, callback):
        handle = mock.Mock()
        self.timers.append((delay, callback, handle))
        return handle

    def call_soon_threadsafe(self, callback):
        callback()


class BytesPoolTest(unittest.TestCase):
    def setUp(self):
        self.pool = BytesPool(_Loop())
        self.addCleanup(self.pool.close)

    def test_a_lent_memfd_holds_the_value_and_is_sealed_against_resizing_but_not_writing(self):
        data = os.urandom(MiB + 3)
        fd, number = self.pool.lend(flat(data))
        self.assertEqual(os.pread(fd, len(data), 0), data)
        self.assertEqual(os.fstat(fd).st_size, 2 * MiB)  # a power of two that fits
        seals = fcntl.fcntl(fd, bytes_fd.F_GET_SEALS)
        wanted = bytes_fd.F_SEAL_SHRINK | bytes_fd.F_SEAL_GROW | bytes_fd.F_SEAL_SEAL
        self.assertEqual(seals, wanted)
        self.assertGreater(number, 0)

    def test_a_busy_memfd_is_not_lent_again_and_a_returned_one_carries_the_next_value(self):
        first, second, third = os.urandom(MiB), os.urandom(MiB), os.urandom(MiB)
        fd1, n1 = self.pool.lend(flat(first))
        fd2, n2 = self.pool.lend(flat(second))
        self.assertNotEqual((fd1, n1), (fd2, n2))
        self.pool.returned([n1])
        fd3, n3 = self.pool.lend(flat(third))
        self.assertEqual((fd3, n3), (fd1, n1))
        self.assertEqual(os.pread(fd3, MiB, 0), third)  # written through the mapping this time
        self.assertEqual(os.pread(fd2, MiB, 0), second)  # the busy one untouched
        self.assertEqual(self.pool.stats, {"entries": 2, "bytes": 2 * MiB, "busy": 2})

    def test_numbers_it_never_lent_are_ignored(self):
        _, number = self.pool.lend(flat(b"x" * 100))
        self.pool.returned([number + 7, "1", None, -1])
        self.assertEqual(self.pool.stats["busy"], 1)

    def test_it_lends_at_most_max_entries_and_max_bytes(self):
        lent = [self.pool.lend(flat(b"v" * 1000)) for _ in range(bytes_pool.MAX_ENTRIES)]
        self.assertTrue(all(lent))
        self.assertIsNone(self.pool.lend(flat(b"v" * 1000)), "a ninth memfd is refused: the caller makes a fresh one")
        other = BytesPool(_Loop())
        self.addCleanup(other.close)
        with mock.patch.object(bytes_pool, "MAX_BYTES", 2 * MiB):
            self.assertIsNotNone(other.lend(flat(b"a" * MiB)))
            self.assertIsNone(other.lend(flat(b"b" * (MiB + 1))), "2 MiB more would pass MAX_BYTES")

    def test_a_memfd_that_cannot_be_written_or_mapped_is_given_up_not_raised(self):
        with mock.patch.object(bytes_pool.os, "pwrite", side_effect=OSError(28, "No space left on device")):
            self.assertIsNone(self.pool.lend(flat(b"n" * 100)), "out of memory: the caller falls back")
        self.assertEqual(self.pool.stats["entries"], 0, "the memfd that failed is closed")
        with mock.patch.object(bytes_pool.mmap, "mmap", side_effect=OSError(12, "Cannot allocate memory")):
            fd, number = self.pool.lend(flat(b"a" * 100))
        self.pool.returned([number])
        self.assertEqual(self.pool.lend(flat(b"b" * 100)), (fd, number), "no mapping: written with pwrite again")
        self.assertEqual(os.pread(fd, 100, 0), b"b" * 100)

    def test_close_closes_every_memfd(self):
        fd, _ = self.pool.lend(flat(b"z" * 10))
        self.pool.close()
        with self.assertRaises(OSError):
            os.fstat(fd)
        self.assertIsNone(self.pool.lend(flat(b"z")), "a closed pool lends nothing")

    def test_memfds_idle_for_idle_s_are_closed_and_busy_ones_kept(self):
        async def run():
            with mock.patch.object(bytes_pool, "IDLE_S", 0.05):
                pool = BytesPool(asyncio.get_running_loop())
                idle_fd, idle = pool.lend(flat(b"i" * 100))
                busy_fd, _ = pool.lend(flat(b"b" * 100))
                pool.returned([idle])
                await asyncio.sleep(0.3)
                stats = pool.stats
                with self.assertRaises(OSError):
                    os.fstat(idle_fd)
                os.fstat(busy_fd)  # still open: the host has not handed it back
                pool.close()
                return stats

        self.assertEqual(asyncio.run(run()), {"entries": 1, "bytes": 64 * 1024, "busy": 1})


class _Channel:
    """An fd channel stand-in: Outbox.frame only asks whether there is one."""

    queued = False


class LendingEncoderTest(unittest.TestCase):
    def test_bytes_from_the_threshold_on_name_the_lent_memfd(self):
        pool = BytesPool(_Loop())
        self.addCleanup(pool.close)
        enc = Encoder(lambda fn: 1, True, 4096, pool)
        data = os.urandom(5000)
        tag = enc.encode(data)
        [fd] = enc.fds
        self.assertEqual(tag, {"$bytes": {"fd": 0, "size": 5000, "lent": enc.lent[0]}})
        self.assertEqual(os.pread(fd, 5000, 0), data)
        self.assertEqual(enc.encode(b"small"), {"$bytes": 0}, "below the threshold: an attachment")

    def test_a_frame_refused_after_lending_gives_its_memfds_back(self):
        pool = BytesPool(_Loop())
        self.addCleanup(pool.close)
        out = Outbox(CaptureTransport(), 64 * 1024)  # maxFrameBytes smaller than the value
        out.fd_channel = _Channel()
        out.bytes_fd = 4096
        out.bytes_pool = pool
        with self.assertRaisesRegex(ValueError, "bytes sent by memfd: 100000 exceeds"):
            out.frame({"k": "result", "id": 1}, "value", os.urandom(100_000))
        self.assertEqual(pool.stats["busy"], 0, "the memfd came back: the host will never return it")


if __name__ == "__main__":
    unittest.main()
