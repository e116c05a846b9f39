"""Received bytes read into fresh memory advised into huge pages: equal to the file, short where it ends, and backed
by 2 MiB pages where the kernel's THP setting allows madvise."""

import ctypes
import os
import time
import unittest

from pyisolate._guest import bytes_fd, fresh_bytes

MiB = 1024 * 1024


def memfd_with(data: bytes) -> int:
    fd = os.memfd_create("fresh-bytes-test", os.MFD_CLOEXEC)
    os.pwrite(fd, data, 0)
    return fd


def thp_mode() -> str:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return f.read().split("[", 1)[1].split("]", 1)[0]
    except (OSError, IndexError):
        return "absent"


def anon_huge_kib(addr: int, size: int) -> int:
    """AnonHugePages of the mappings overlapping [addr, addr + size) in /proc/self/smaps."""
    total, inside = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split(" ", 1)[0]
            if "-" in head and ":" not in head:
                lo, hi = (int(x, 16) for x in head.split("-"))
                inside = lo < addr + size and addr < hi
            elif inside and line.startswith("AnonHugePages:"):
                total += int(line.split()[1])
    return total


class FreshBytesTest(unittest.TestCase):
    def test_a_large_read_is_bytes_equal_to_the_file(self):
        data = os.urandom(MiB) * 9 + b"tail"
        fd = memfd_with(data)
        try:
            got = fresh_bytes.pread_bytes(fd, len(data))
        finally:
            os.close(fd)
        self.assertIs(type(got), bytes)
        self.assertEqual(got, data)

    def test_small_and_short_reads_give_what_the_file_holds(self):
        fd = memfd_with(b"x" * (5 * MiB))
        try:
            self.assertEqual(fresh_bytes.pread_bytes(fd, 100), b"x" * 100)  # below MIN_SIZE: a plain pread
            short = fresh_bytes.pread_bytes(fd, 8 * MiB)  # the file ends first
        finally:
            os.close(fd)
        self.assertIs(type(short), bytes)
        self.assertEqual(short, b"x" * (5 * MiB))

    @unittest.skipIf(fresh_bytes.CALLS is None, "no CPython bytes C API or madvise here")
    def test_the_bytes_are_backed_by_huge_pages_where_thp_allows_madvise(self):
        mode = thp_mode()
        if mode not in ("madvise", "always"):
            self.skipTest(f"transparent huge pages are {mode!r} on this kernel")
        size = 16 * MiB
        fd = memfd_with(b"\1" * size)
        try:
            got = fresh_bytes.pread_bytes(fd, size)
        finally:
            os.close(fd)
        addr = ctypes.cast(ctypes.c_char_p(got), ctypes.c_void_p).value
        self.assertGreaterEqual(anon_huge_kib(addr, size), 2048, "at least one 2 MiB page backs the bytes")
        self.assertEqual(got.count(1), size)

    def test_a_released_memfd_is_closed_small_at_once_large_soon_after(self):
        small, large = memfd_with(b"s"), memfd_with(b"l" * fresh_bytes.MIN_SIZE)
        bytes_fd.release(small, 1)
        with self.assertRaises(OSError):
            os.fstat(small)
        bytes_fd.release(large, fresh_bytes.MIN_SIZE)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.fstat(large)
            except OSError:
                return
            time.sleep(0.01)
        self.fail("the large memfd was still open 5 s after its release")


if __name__ == "__main__":
    unittest.main()
