"""SocketTransport, the guest's own transport on the host's Unix socket, over real socketpairs."""

import asyncio
import os
import random
import socket
import unittest

from pyisolate._guest.sock_transport import HIGH_WATER, LOW_WATER, SocketTransport


class Recorder(asyncio.Protocol):
    """Keeps what the transport tells it, in order."""

    def __init__(self, loop, on_data=None, eof_keeps_open=False) -> None:
        self.events = []
        self.received = bytearray()
        self.lost = loop.create_future()
        self.eof = loop.create_future()
        self._on_data = on_data
        self._eof_keeps_open = eof_keeps_open

    def data_received(self, data) -> None:
        self.received += data
        if self._on_data is not None:
            self._on_data(data)

    def eof_received(self):
        self.events.append("eof")
        self.eof.set_result(None)
        return self._eof_keeps_open

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")

    def connection_lost(self, exc) -> None:
        self.events.append(("lost", exc))
        self.lost.set_result(exc)


class SocketTransportTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.loop = asyncio.get_running_loop()
        self.ours, self.theirs = socket.socketpair()
        self.theirs.setblocking(False)

    async def asyncTearDown(self):
        self.theirs.close()
        self.ours.close()

    def open(self, **kw):
        protocol = Recorder(self.loop, **kw)
        transport = SocketTransport(self.loop, self.ours)
        transport.set_protocol(protocol)
        return transport, protocol

    async def read_all(self, n: int, pace=None) -> bytes:
        """Read n bytes from their end, `pace()` bytes per recv when given."""
        got = bytearray()
        while len(got) < n:
            try:
                chunk = self.theirs.recv(pace() if pace else 1 << 20)
            except BlockingIOError:
                await asyncio.sleep(0.001)
                continue
            self.assertTrue(chunk, "their end saw EOF before every byte arrived")
            got += chunk
        return bytes(got)

    async def test_reads_reach_the_protocol_in_order(self):
        _transport, protocol = self.open()
        sent = b"".join(os.urandom(random.randint(1, 3000)) for _ in range(50))
        self.theirs.sendall(sent)
        while len(protocol.received) < len(sent):
            await asyncio.sleep(0.001)
        self.assertEqual(bytes(protocol.received), sent)

    async def test_a_write_the_socket_takes_is_sent_at_once_and_nothing_waits(self):
        transport, protocol = self.open()
        transport.write(b"hello")
        transport.write(bytearray(b" world"))
        transport.write(memoryview(b"!!"))
        self.assertEqual(transport.get_write_buffer_size(), 0)
        self.assertEqual(self.theirs.recv(100), b"hello world!!")
        self.assertEqual(protocol.events, [])

    async def test_a_large_write_waits_pauses_the_writer_and_arrives_whole_once_read(self):
        self.ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        transport, protocol = self.open()
        big = os.urandom(4 * 1024 * 1024)
        transport.write(big)
        transport.write(b"after")
        self.assertGreater(transport.get_write_buffer_size(), HIGH_WATER)
        self.assertEqual(protocol.events, ["pause"])  # once, though both writes were over the mark
        got = await self.read_all(len(big) + 5)
        self.assertEqual(got, big + b"after")
        await asyncio.sleep(0.01)
        self.assertEqual(transport.get_write_buffer_size(), 0)
        self.assertEqual(protocol.events, ["pause", "resume"])

    async def test_resume_comes_only_once_the_waiting_bytes_are_down_to_the_low_mark(self):
        self.ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        transport, protocol = self.open()
        transport.write(os.urandom(HIGH_WATER * 4))
        sizes = []
        while "resume" not in protocol.events:
            sizes.append(transport.get_write_buffer_size())
            try:
                self.theirs.recv(2048)
            except BlockingIOError:
                pass
            await asyncio.sleep(0)
        self.assertLessEqual(transport.get_write_buffer_size(), LOW_WATER)
        self.assertTrue(any(size > LOW_WATER for size in sizes[1:]), "resumed before the buffer drained")

    async def test_a_buffer_reused_after_write_does_not_change_what_is_sent(self):
        self.ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        transport, _protocol = self.open()
        buffer = bytearray(b"a" * 1024 * 1024)
        transport.write(buffer)  # most of it waits
        transport.write(memoryview(buffer))  # all of it waits
        buffer[:] = b"b" * len(buffer)
        got = await self.read_all(2 * len(buffer))
        self.assertEqual(got, b"a" * len(got))

    async def test_writes_of_any_size_and_pace_arrive_in_order(self):
        self.ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        transport, _protocol = self.open()
        rng = random.Random(13)
        parts = [rng.randbytes(rng.choice([1, 7, 100, 5000, 70000])) for _ in range(300)]
        expected = b"".join(parts)
        # Their end reads at its own pace meanwhile, so the socket takes some writes whole while others wait.
        reading = asyncio.ensure_future(self.read_all(len(expected), pace=lambda: rng.choice([1, 100, 4096, 65536])))
        for i, part in enumerate(parts):
            transport.write(part if i % 3 == 0 else bytearray(part) if i % 3 == 1 else memoryview(part))
            if rng.random() < 0.3:
                await asyncio.sleep(0.0005 * rng.randrange(3))  # the reader and the writer callback run between
        got = await asyncio.wait_for(reading, 30)
        self.assertEqual(got, expected)

    async def test_close_sends_what_waits_then_loses_the_connection_once(self):
        self.ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        transport, protocol = self.open()
        data = os.urandom(512 * 1024)
        transport.write(data)
        transport.close()
        transport.close()
        self.assertTrue(transport.is_closing())
        transport.write(b"dropped: written after close")
        got = await self.read_all(len(data))
        self.assertEqual(got, data)
        self.assertIsNone(await asyncio.wait_for(protocol.lost, 5))
        await asyncio.sleep(0.01)
        self.assertEqual([e for e in protocol.events if type(e) is tuple], [("lost", None)])
        self.assertEqual(self.ours.fileno(), -1)  # the transport closed its socket
        self.assertEqual(self.theirs.recv(10), b"")  # and their end sees EOF, nothing after the data

    async def test_abort_drops_what_waits(self):
        self.ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        transport, protocol = self.open()
        transport.write(os.urandom(1024 * 1024))
        transport.abort()
        transport.close()
        self.assertEqual(transport.get_write_buffer_size(), 0)
        self.assertIsNone(await asyncio.wait_for(protocol.lost, 5))
        self.assertEqual(self.ours.fileno(), -1)

    async def test_their_eof_is_told_and_then_the_connection_ends(self):
        transport, protocol = self.open()
        self.theirs.sendall(b"last words")
        self.theirs.shutdown(socket.SHUT_WR)
        self.assertIsNone(await asyncio.wait_for(protocol.lost, 5))
        self.assertEqual(bytes(protocol.received), b"last words")
        self.assertEqual(protocol.events, ["eof", ("lost", None)])
        self.assertTrue(transport.is_closing())

    async def test_a_protocol_that_keeps_the_connection_open_after_eof_can_still_write(self):
        transport, protocol = self.open(eof_keeps_open=True)
        self.theirs.shutdown(socket.SHUT_WR)
        await asyncio.wait_for(protocol.eof, 5)
        self.assertFalse(transport.is_closing())
        transport.write(b"reply after eof")
        self.assertEqual(await self.read_all(15), b"reply after eof")
        transport.close()
        self.assertIsNone(await asyncio.wait_for(protocol.lost, 5))

    async def test_a_write_to_a_closed_peer_ends_the_connection_with_the_error(self):
        transport, protocol = self.open()
        self.theirs.close()
        transport.write(b"x" * 100000)
        error = await asyncio.wait_for(protocol.lost, 5)
        self.assertIsInstance(error, OSError)
        transport.write(b"nothing happens now")
        self.assertEqual(self.ours.fileno(), -1)

    async def test_a_protocol_failing_on_data_ends_the_connection_with_its_error(self):
        failure = RuntimeError("cannot take this")

        def fail(_data):
            raise failure

        transport, protocol = self.open(on_data=fail)
        self.theirs.sendall(b"boom")
        self.assertIs(await asyncio.wait_for(protocol.lost, 5), failure)
        self.assertTrue(transport.is_closing())
        await asyncio.sleep(0.01)  # the loop goes on: nothing reads from the socket any more
        self.assertEqual(self.ours.fileno(), -1)

    async def test_a_protocol_reading_in_place_gets_bytes_straight_into_its_buffer(self):
        buffer = bytearray(300_000)

        class InPlace(Recorder):
            def __init__(self, loop):
                super().__init__(loop)
                self.in_place = self  # every read goes into `buffer` until it is full
                self.filled = 0
                self.counts = []

            def read_into(self):
                return memoryview(buffer)[self.filled :]

            def bytes_read(self, n):
                self.filled += n
                self.counts.append(n)
                if self.filled == len(buffer):
                    self.in_place = None  # then chunks come as data_received again

        protocol = InPlace(self.loop)
        transport = SocketTransport(self.loop, self.ours)
        transport.set_protocol(protocol)
        payload = os.urandom(len(buffer))
        await self.loop.sock_sendall(self.theirs, payload + b"tail")
        while len(protocol.received) < 4:
            await asyncio.sleep(0.001)
        self.assertEqual(bytes(buffer), payload)
        self.assertEqual(sum(protocol.counts), len(payload))
        self.assertEqual(bytes(protocol.received), b"tail")
        self.theirs.shutdown(socket.SHUT_WR)
        self.assertIsNone(await asyncio.wait_for(protocol.lost, 5))
        self.assertEqual(protocol.events, ["eof", ("lost", None)])

    async def test_nothing_is_read_before_a_protocol_is_set(self):
        transport = SocketTransport(self.loop, self.ours)
        self.theirs.sendall(b"early")
        await asyncio.sleep(0.01)
        protocol = Recorder(self.loop)
        transport.set_protocol(protocol)
        while not protocol.received:
            await asyncio.sleep(0.001)
        self.assertEqual(bytes(protocol.received), b"early")
        self.assertIs(transport.get_protocol(), protocol)
        self.assertIs(transport.get_extra_info("socket"), self.ours)
        self.assertIsNone(transport.get_extra_info("peername"))
        transport.abort()
        await protocol.lost


if __name__ == "__main__":
    unittest.main()
