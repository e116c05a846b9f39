"""Two Peers joined by a socketpair in one event loop, and a transport that keeps what is written, for the
in-memory protocol tests."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import unittest

from pyisolate._guest import segments
from pyisolate._guest.peer import Peer


class PeerPair:
    """`host` and `guest` peers; control messages each receives are queued in `host_messages`."""

    async def __aenter__(self):
        a, b = socket.socketpair()
        self.host_messages = asyncio.Queue()
        self.host = await self._peer(a, self.host_messages.put_nowait)
        self.guest = await self._peer(b, None)
        loop = asyncio.get_running_loop()
        self.tasks = [loop.create_task(self.host.run()), loop.create_task(self.guest.run())]
        return self

    @staticmethod
    async def _peer(sock, on_message):
        return Peer(sock=sock, on_message=on_message)  # the guest's own transport, as over the host's socket

    async def __aexit__(self, *exc):
        self.host.close()
        self.guest.close()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class CaptureTransport:
    """A transport that keeps what is written (for an Outbox under test)."""

    def __init__(self):
        self.data = b""

    def write(self, chunk):
        self.data += bytes(chunk)

    def get_write_buffer_size(self):
        return 0


class BoundReleases:
    """Binds the segments' release queue (as a peer in shm mode does) for a `with` block; `sent` gets each batch."""

    def __enter__(self):
        self.loop = asyncio.new_event_loop()
        self.sent = []
        segments.releases.bind(self.loop, self.sent.append)
        return self

    def __exit__(self, *exc):
        segments.releases.unbind()
        self.loop.close()


def frame_bytes(header: dict) -> bytes:
    """One frame with `header` and no attachments, as the host writes it."""
    data = json.dumps(header).encode()
    return struct.pack(">II", 4 + len(data), len(data)) + data


def recv_now(sock: socket.socket) -> bytes:
    """Whatever a non-blocking socket holds now."""
    data = b""
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except BlockingIOError:
            return data
        if not chunk:
            return data
        data += chunk


class RawHostCase(unittest.IsolatedAsyncioTestCase):
    """A real Peer on one end of a socketpair, serving `make_extension()` as "extension"; the test plays the host on
    the other end, byte by byte."""

    def make_extension(self):
        raise NotImplementedError

    async def asyncSetUp(self):
        self.loop = asyncio.get_running_loop()
        ours, self.host = socket.socketpair()
        self.host.setblocking(False)
        self.peer = Peer(sock=ours)
        self.peer.register("extension", self.make_extension())
        self.reading = self.loop.create_task(self.peer.run())

    async def asyncTearDown(self):
        self.peer.close()
        await asyncio.gather(self.reading, return_exceptions=True)
        self.host.close()

    async def deliver(self, data: bytes, passes: int = 0) -> bytes:
        """Hands `data` to the peer as the transport would (a loop callback, no task current) and returns what the
        peer had written by the time that callback returned, or, with `passes`, that many loop passes later."""
        written = self.loop.create_future()

        def deliver():
            self.peer._link.data_received(data)
            written.set_result(recv_now(self.host) if passes == 0 else b"")

        self.loop.call_soon(deliver)
        early = await written
        if passes == 0:
            return early
        for _ in range(passes):
            await asyncio.sleep(0)
        return recv_now(self.host)
