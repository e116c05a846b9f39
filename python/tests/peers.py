"""Two Peers joined by a socketpair in one event loop, and a transport that keeps what is written, for the
in-memory protocol tests."""

from __future__ import annotations

import asyncio
import socket

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
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        return Peer(reader, writer, on_message=on_message)

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
