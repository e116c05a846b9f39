"""The guest's event backlog is bounded: with a host that does not read, a producer thread blocks and an emit on the
event loop fails with BufferError; once the host reads, every blocked event is delivered."""

from __future__ import annotations

import asyncio
import socket
import threading
import unittest

from pyisolate._guest.peer import Peer

CAP = 2 * 1024 * 1024
EVENT = 64 * 1024


class GuestWithDeafHost:
    """A guest Peer whose other end is a raw socket the test reads only when it chooses."""

    async def __aenter__(self):
        self.raw, guest_sock = socket.socketpair()
        reader, writer = await asyncio.open_unix_connection(sock=guest_sock)
        self.peer = Peer(reader, writer)
        self.peer.events.max_bytes = CAP
        self.task = asyncio.get_running_loop().create_task(self.peer.run())
        return self

    async def __aexit__(self, *exc):
        self.raw.close()  # first: a transport closing with a full buffer waits for a reader that never comes
        self.peer.close()
        await asyncio.gather(self.task, return_exceptions=True)

    def read_all(self, stop: threading.Event) -> threading.Thread:
        """Drain the host's end in a thread until `stop`; the byte count lands in self.read."""
        self.read = 0
        self.raw.settimeout(0.05)

        def run():
            while not stop.is_set():
                try:
                    chunk = self.raw.recv(1 << 20)
                except socket.timeout:
                    continue
                if not chunk:
                    return
                self.read += len(chunk)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread


class EventBacklogTest(unittest.IsolatedAsyncioTestCase):
    async def test_a_thread_that_emits_faster_than_the_host_reads_blocks_and_the_backlog_stays_bounded(self):
        async with GuestWithDeafHost() as g:
            count = 200  # 12.5 MiB of events, six times the cap
            sent = []
            producer = threading.Thread(
                target=lambda: [sent.append(g.peer.emit("tick", b"x" * EVENT)) for _ in range(count)], daemon=True
            )
            producer.start()
            peak = 0
            for _ in range(100):  # about a second: the producer gets as far as the bound lets it
                await asyncio.sleep(0.01)
                peak = max(peak, g.peer._out.buffered() + g.peer.events._scheduled)
            self.assertTrue(producer.is_alive(), "the producer is held while the host does not read")
            self.assertLess(len(sent), count)
            self.assertLessEqual(peak, CAP + 2 * EVENT, "what waits stays within the cap (plus the socket's own)")
            stop = threading.Event()
            reader = g.read_all(stop)
            while producer.is_alive():
                await asyncio.sleep(0.02)
            self.assertEqual(len(sent), count, "once the host reads, every event goes out")
            while g.read < count * EVENT:
                await asyncio.sleep(0.02)
            stop.set()
            reader.join()

    async def test_an_emit_on_the_event_loop_past_the_bound_raises_buffer_error(self):
        async with GuestWithDeafHost() as g:
            emitted = 0
            with self.assertRaises(BufferError) as caught:
                for _ in range(1000):
                    g.peer.emit("tick", b"x" * EVENT)
                    emitted += 1
            self.assertIn("event backlog full", str(caught.exception))
            self.assertLessEqual(g.peer._out.buffered(), CAP)
            self.assertGreater(emitted * EVENT, CAP // 2, "events within the bound passed first")

    async def test_one_event_larger_than_the_bound_passes_when_nothing_waits(self):
        async with GuestWithDeafHost() as g:
            g.peer.emit("big", b"x" * (CAP + EVENT))
            self.assertGreater(g.peer._out.buffered(), CAP // 2, "it is queued whole, not refused")


if __name__ == "__main__":
    unittest.main()
