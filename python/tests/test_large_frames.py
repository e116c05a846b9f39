"""Large frames: attachments read straight into their own buffers (large_frame.py), fed or read in place."""

import asyncio
import gc
import json
import random
import socket
import struct
import unittest

from pyisolate._guest import fresh_bytes
from pyisolate._guest.framing import IN_PLACE_MIN, FrameDecoder, ProtocolError, encode_frame
from pyisolate._guest.fresh_bytes import RECYCLER

MIB = 1024 * 1024


def frame(msg: dict, attachments=()) -> bytes:
    lengths = [len(a) for a in attachments]
    if attachments:
        msg = dict(msg, a=lengths)
    return b"".join(encode_frame(json.dumps(msg).encode(), list(attachments), lengths))


def decode(decoder: FrameDecoder, data: bytes, rng: random.Random, in_place: bool) -> list:
    """Hands `data` to `decoder` in random pieces, as a transport would: read in place whenever the decoder asks
    for it (in_place), else always fed."""
    out = []
    at = 0
    while at < len(data):
        size = rng.choice([1, 7, 1000, 65536, 300_000, 5 * MIB])
        if in_place and decoder.reading_in_place():
            with decoder.read_into() as target:
                n = min(size, target.nbytes, len(data) - at)
                target[:n] = data[at : at + n]
            out += decoder.filled(n)
        else:
            n = min(size, len(data) - at)
            out += decoder.feed(data[at : at + n])
        at += n
    return out


class LargeFrameTest(unittest.TestCase):
    def test_frames_of_every_shape_come_out_whole_read_in_place_or_fed(self):
        rng = random.Random(61)
        for in_place in (True, False):
            for trial in range(12):
                messages = []
                for n in range(rng.randrange(1, 5)):
                    sizes = [
                        rng.choice([0, 1, 5000, IN_PLACE_MIN, 4 * MIB + 3, 9 * MIB]) for _ in range(rng.randrange(4))
                    ]
                    attachments = [rng.randbytes(size) for size in sizes]
                    messages.append(({"k": "call", "n": n, "pad": "x" * rng.choice([0, 70000])}, attachments))
                data = b"".join(frame(msg, attachments) for msg, attachments in messages)
                decoder = FrameDecoder(max_frame_bytes=64 * MIB)
                got = decode(decoder, data, rng, in_place)
                with self.subTest(in_place=in_place, trial=trial):
                    self.assertEqual(len(got), len(messages))
                    for (msg, attachments), (want_msg, want_attachments) in zip(got, messages):
                        self.assertEqual(msg["n"], want_msg["n"])
                        self.assertEqual(msg["pad"], want_msg["pad"])
                        self.assertEqual(len(attachments), len(want_attachments))
                        for a, b in zip(attachments, want_attachments):
                            self.assertIs(type(a), bytes)  # an extension gets bytes, as from the general path
                            self.assertEqual(a, b)
                    self.assertTrue(decoder.idle())

    def test_a_large_frame_is_read_in_place_once_its_header_is_here(self):
        payload = bytes(range(256)) * (5 * MIB // 256)
        data = frame({"k": "call"}, [b"small", payload])
        decoder = FrameDecoder(max_frame_bytes=64 * MIB)
        header_end = data.index(b"small")
        self.assertEqual(decoder.feed(data[: header_end - 1]), [])
        self.assertFalse(decoder.reading_in_place())  # the header is not all here yet
        self.assertEqual(decoder.feed(data[header_end - 1 : header_end + 2]), [])
        self.assertTrue(decoder.reading_in_place())
        with decoder.read_into() as target:
            self.assertEqual(target.nbytes, 3)  # the rest of "small"; the payload's buffer comes next
        at = header_end + 2
        got = []
        while decoder.reading_in_place():
            with decoder.read_into() as target:
                n = min(target.nbytes, 1 << 20)
                target[:n] = data[at : at + n]
            at += n
            got += decoder.filled(n)
        self.assertEqual(at, len(data))
        self.assertEqual(got[0][1], [b"small", payload])
        self.assertEqual(decoder.largest, len(data) - 4)  # what tells the peer to trim the heap after it

    def test_a_bad_header_of_a_large_frame_fails_before_its_body_arrives(self):
        header = b'{"k":"call","a":[100]}'
        start = struct.pack(">II", 4 + len(header) + IN_PLACE_MIN, len(header)) + header
        with self.assertRaisesRegex(ProtocolError, f"add up to 100 bytes but the frame carries {IN_PLACE_MIN}"):
            FrameDecoder(max_frame_bytes=64 * MIB).feed(start + b"x" * 10)
        with self.assertRaisesRegex(ProtocolError, "trailing bytes"):
            FrameDecoder(max_frame_bytes=64 * MIB).feed(struct.pack(">II", 4 + 2 + IN_PLACE_MIN, 2) + b"{}")
        with self.assertRaisesRegex(ProtocolError, "exceeds the limit"):
            FrameDecoder(max_frame_bytes=IN_PLACE_MIN).feed(start)

    def test_frames_after_a_large_one_in_the_same_chunk_are_read_too(self):
        payload = b"\x01" * (2 * MIB)
        data = frame({"n": 1}, [payload]) + frame({"n": 2}) + frame({"n": 3}, [b"z"])
        decoder = FrameDecoder(max_frame_bytes=64 * MIB)
        out = decoder.feed(data[:100]) + decoder.feed(data[100:])
        self.assertEqual([(m["n"], a) for m, a in out], [(1, [payload]), (2, []), (3, [b"z"])])


@unittest.skipIf(fresh_bytes.CALLS is None, "no CPython bytes API here: large attachments are plain bytearray copies")
class RecycledAttachmentTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        RECYCLER.clear()
        RECYCLER.bind(asyncio.get_running_loop())

    async def asyncTearDown(self):
        RECYCLER.clear()
        RECYCLER.bind(None)

    def receive(self, fill: int):
        data = frame({"k": "call"}, [bytes([fill]) * (5 * MIB)])
        decoder = FrameDecoder(max_frame_bytes=64 * MIB)
        return decode(decoder, data, random.Random(fill), in_place=True)[0][1][0]

    async def test_an_attachment_still_held_is_never_refilled(self):
        first = self.receive(1)
        second = self.receive(2)
        self.assertIsNot(first, second)
        self.assertEqual(first, b"\x01" * (5 * MIB))
        self.assertEqual(second, b"\x02" * (5 * MIB))

    async def test_one_nobody_holds_is_filled_again_with_the_new_bytes(self):
        address = id(self.receive(3))  # dropped at once: only the recycler holds it
        gc.collect()
        again = self.receive(4)
        self.assertEqual(id(again), address)
        self.assertEqual(again, b"\x04" * (5 * MIB))
        self.assertEqual(hash(again), hash(b"\x04" * (5 * MIB)))  # its cached hash was reset, not kept from before


class OverTheSocketTest(unittest.IsolatedAsyncioTestCase):
    async def test_a_peer_on_its_socket_transport_receives_a_large_frame_whole(self):
        from pyisolate._guest.peer import Peer

        ours, theirs = socket.socketpair()
        received = asyncio.get_running_loop().create_future()

        class Target:
            def take(self, data):
                received.set_result(data)
                return len(data)

        peer = Peer(sock=ours)
        peer.register("extension", Target())
        reading = asyncio.ensure_future(peer.run())
        payload = random.Random(7).randbytes(6 * MIB + 5)
        header = {"k": "call", "id": 1, "target": "extension", "method": "take", "args": [{"$bytes": 0}], "x": 1}
        theirs.setblocking(False)
        data = frame(header, [payload])
        loop = asyncio.get_running_loop()
        await loop.sock_sendall(theirs, data)
        got = await asyncio.wait_for(received, 10)
        self.assertEqual(got, payload)
        peer.close()
        await asyncio.gather(reading, return_exceptions=True)
        theirs.close()


if __name__ == "__main__":
    unittest.main()
