"""Bytes by sealed memfd in the guest codec: the threshold, the round trip as bytes, and refused fds."""

import fcntl
import os
import unittest

from pyisolate._guest import bytes_fd
from pyisolate._guest.codec import Decoder, Encoder


def encode(value, threshold):
    enc = Encoder(lambda fn: 1, shm=True, bytes_fd=threshold)
    return enc, enc.encode(value)


def decode(value, fds):
    dec = Decoder([], None, list(fds))
    try:
        return dec.decode(value)
    finally:
        dec.close()


class BytesByMemfdTest(unittest.TestCase):
    def test_bytes_from_the_threshold_on_go_as_a_sealed_memfd_below_it_as_attachments(self):
        enc, value = encode([b"a" * 4095, b"b" * 4096], 4096)
        self.assertEqual(value, [{"$bytes": 0}, {"$bytes": {"fd": 0, "size": 4096}}])
        self.assertEqual(len(enc.attachments), 1)
        self.assertEqual(len(enc.fds), 1)
        self.assertEqual(enc.fd_bytes, 4096)
        seals = fcntl.fcntl(enc.fds[0], bytes_fd.F_GET_SEALS)
        self.assertEqual(
            seals & (bytes_fd.F_SEAL_SHRINK | bytes_fd.F_SEAL_WRITE), bytes_fd.F_SEAL_SHRINK | bytes_fd.F_SEAL_WRITE
        )

    def test_a_memfd_round_trip_gives_bytes_equal_to_the_input_for_bytes_bytearray_and_memoryview(self):
        data = os.urandom(3 * 1024 * 1024)
        for value in (data, bytearray(data), memoryview(bytearray(data))):
            enc, encoded = encode({"v": value}, 1024)
            fd = os.dup(enc.fds[0])  # the frame's own copy, as the receiver gets it
            got = decode(encoded, [fd])
            self.assertIs(type(got["v"]), bytes)
            self.assertEqual(got["v"], data)
            with self.assertRaises(OSError):
                os.fstat(fd)  # the decoder took and closed it

    def test_the_memfd_is_closed_once_nothing_keeps_it(self):
        enc, _ = encode(b"x" * 8192, 1)
        fd = enc.fds[0]
        os.fstat(fd)
        enc.keep.clear()  # what the fd channel does once the fd went out
        with self.assertRaises(OSError):
            os.fstat(fd)

    def test_no_threshold_keeps_every_bytes_value_in_the_frame(self):
        enc, value = encode(b"z" * (1 << 20), None)
        self.assertEqual(value, {"$bytes": 0})
        self.assertEqual(enc.fds, [])

    def test_a_pooled_memfd_is_closed_on_the_decoding_thread_and_a_sealed_one_of_its_size_by_a_helper_thread(self):
        # The host's pool: larger than the value, sealed against shrinking, growing and new seals, not writing. Its
        # pages stay with the host, so closing it frees nothing and needs no thread; a sealed one's last close does.
        size = 8 * 1024 * 1024
        pooled = os.memfd_create("pool", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        os.ftruncate(pooled, 2 * size)
        os.pwrite(pooled, b"\x07" * size, 0)
        fcntl.fcntl(pooled, bytes_fd.F_ADD_SEALS, bytes_fd.F_SEAL_SHRINK | bytes_fd.F_SEAL_GROW | bytes_fd.F_SEAL_SEAL)
        kept = os.dup(pooled)  # what the host holds
        sealed = bytes_fd.write_memfd(b"\x09" * size)
        started = []
        real = bytes_fd.threading.Thread

        class Recording(real):
            def start(self):
                started.append(self.name)
                super().start()

        bytes_fd.threading.Thread = Recording
        try:
            self.assertEqual(decode({"$bytes": {"fd": 0, "size": size}}, [pooled]), b"\x07" * size)
            with self.assertRaises(OSError):  # closed already, here
                os.fstat(pooled)
            self.assertEqual(started, [])
            self.assertEqual(decode({"$bytes": {"fd": 0, "size": size}}, [os.dup(sealed.fd)]), b"\x09" * size)
            self.assertEqual(started, ["pyisolate-close"])
        finally:
            bytes_fd.threading.Thread = real
            os.close(kept)

    def test_an_unsealed_memfd_a_pipe_a_short_one_and_a_missing_fd_are_refused(self):
        unsealed = os.memfd_create("t", os.MFD_CLOEXEC)
        os.ftruncate(unsealed, 16)
        r, w = os.pipe()
        os.close(w)
        short = bytes_fd.write_memfd(b"q" * 8)
        cases = [
            ([unsealed], {"fd": 0, "size": 16}, "not sealed against shrinking"),
            ([r], {"fd": 0, "size": 1}, "not a sealed memfd"),
            ([os.dup(short.fd)], {"fd": 0, "size": 9}, "more than its fd holds"),
            ([], {"fd": 0, "size": 1}, "does not name one of the frame's fds"),
            ([os.dup(short.fd)], {"fd": 0, "size": 8, "extra": 1}, "does not name one of the frame's fds"),
        ]
        for fds, payload, message in cases:
            with self.subTest(message=message), self.assertRaisesRegex(ValueError, message):
                decode({"$bytes": payload}, fds)


if __name__ == "__main__":
    unittest.main()
