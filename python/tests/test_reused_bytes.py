"""Large received bytes made again out of earlier ones: only when nothing but the recycler holds them, with the hash
reset, of the same size only, and let go after IDLE_S."""

import asyncio
import os
import unittest
from unittest import mock

from pyisolate._guest import fresh_bytes, reused_bytes
from pyisolate._guest.fresh_bytes import RECYCLER

MiB = 1024 * 1024
SIZE = 5 * MiB  # from fresh_bytes.MIN_SIZE on


def memfd_with(data: bytes) -> int:
    fd = os.memfd_create("reused-bytes-test", os.MFD_CLOEXEC)
    os.pwrite(fd, data, 0)
    return fd


@unittest.skipIf(RECYCLER._address is None or fresh_bytes.CALLS is None, "not CPython with the bytes C API")
class RecyclerTest(unittest.TestCase):
    def setUp(self):
        self.loop = asyncio.new_event_loop()
        RECYCLER.bind(self.loop)
        self.addCleanup(self._unbind)

    def _unbind(self):
        RECYCLER.clear()
        RECYCLER.bind(None)
        self.loop.close()

    def read(self, data: bytes) -> bytes:
        fd = memfd_with(data)
        try:
            return fresh_bytes.pread_bytes(fd, len(data))
        finally:
            os.close(fd)

    def test_a_value_nobody_holds_is_filled_again_with_its_hash_reset(self):
        first_data, second_data = os.urandom(SIZE), os.urandom(SIZE)
        first = self.read(first_data)
        first_id, first_hash = id(first), hash(first)  # the hash is now cached in the object
        del first
        second = self.read(second_data)
        self.assertEqual(id(second), first_id, "the same object, refilled")
        self.assertEqual(second, second_data)
        self.assertEqual(hash(second), hash(bytes(bytearray(second_data))))
        self.assertNotEqual(hash(second), first_hash)

    def test_a_value_still_held_is_never_touched(self):
        first_data = os.urandom(SIZE)
        holders = {  # how the extension holds it, and how to read it back through that hold
            "a list": (lambda v: [v], lambda held: held[0]),
            "a memoryview": (memoryview, lambda held: held.tobytes()),
            "a dict key": (lambda v: {v: 1}, lambda held: next(iter(held))),
        }
        for name, (hold, read_back) in holders.items():
            with self.subTest(name):
                first = self.read(first_data)
                held = hold(first)
                first_id = id(first)
                del first
                second = self.read(os.urandom(SIZE))
                self.assertNotEqual(id(second), first_id)
                self.assertEqual(read_back(held), first_data)
                del held, second
                RECYCLER.clear()

    def test_only_a_value_of_the_same_size_is_reused(self):
        first = self.read(os.urandom(SIZE))
        first_id = id(first)
        del first
        other = self.read(os.urandom(SIZE + 1))
        self.assertNotEqual(id(other), first_id)

    def test_without_a_loop_nothing_is_kept(self):
        RECYCLER.bind(None)
        self.read(os.urandom(SIZE))
        self.assertEqual(RECYCLER.held, 0)

    def test_kept_values_are_let_go_after_idle_s(self):
        async def run():
            RECYCLER.bind(asyncio.get_running_loop())
            with mock.patch.object(reused_bytes, "IDLE_S", 0.05):
                self.read(os.urandom(SIZE))
                held = RECYCLER.held
                await asyncio.sleep(0.3)
                return held, RECYCLER.held

        self.assertEqual(asyncio.run(run()), (SIZE, 0))


if __name__ == "__main__":
    unittest.main()
