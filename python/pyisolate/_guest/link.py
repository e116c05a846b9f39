"""The peer's hold on its transport: bytes handed over as they arrive, and the writers' flow control.

asyncio's StreamReader costs every read a trip around the event loop (the reader's future wakes the reading task,
which runs in the next iteration) and a copy into its buffer. The peer decodes each chunk inside the callback that
delivered it, so a sync method, or an async one that returns without waiting (Python 3.12+ starts it eagerly), is
answered before the loop polls again. On the host's Unix socket the transport is our own (`attach`, sock_transport.py);
on the TCP+TLS link it is taken over from the streams that opened it (`take_over`, `Transport.set_protocol`).
"""

from __future__ import annotations

import asyncio
import collections


class Link(asyncio.Protocol):
    """Calls `on_data(chunk)` for each chunk read; `done` settles when the connection ends.

    An exception from `on_data` (a ProtocolError) ends the connection: `done` gets it and the transport is closed.
    `done` is None-valued on EOF or a clean close, and a ConnectionError when the connection was lost to an error.
    """

    def __init__(self, loop, on_data, on_filled=None) -> None:
        self._loop = loop
        self._on_data = on_data
        self._on_filled = on_filled
        # While a large frame is read in place: the FrameDecoder whose read_into() the transport fills, and tells
        # filled(n) through bytes_read(); None otherwise (set by the peer after each chunk).
        self.in_place = None
        self._transport = None
        self._paused = False
        self._waiters = collections.deque()
        self._streams = None
        self.done = loop.create_future()

    def attach(self, transport) -> None:
        """Become the protocol of `transport`, which has delivered nothing yet (a SocketTransport)."""
        self._transport = transport
        transport.set_protocol(self)

    def take_over(self, reader, writer) -> None:
        """Become the protocol of `writer`'s transport; bytes `reader` buffered already are handled first."""
        self._transport = writer.transport
        self._streams = (reader, writer)  # a StreamWriter closes its transport when it is collected (3.11.5+)
        self._transport.set_protocol(self)
        leftover = bytes(getattr(reader, "_buffer", b""))  # StreamReader's own buffer: read before we took over
        if leftover:
            self.data_received(leftover)
        if reader.at_eof() or self._transport.is_closing():
            self._finish(None)

    # -- asyncio.Protocol --------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return  # a failed chunk closed us; the transport may still deliver what it read with it
        try:
            self._on_data(data)
        except Exception as e:
            self._finish(e)
            self._transport.close()

    def bytes_read(self, n: int) -> None:
        """`n` bytes were read into `in_place.read_into()` (a SocketTransport reading a large frame)."""
        if self.done.done():
            return
        try:
            self._on_filled(n)
        except Exception as e:
            self._finish(e)
            self._transport.close()

    def eof_received(self):
        self._finish(None)
        return False  # close the transport

    def connection_lost(self, exc) -> None:
        if exc is None:
            self._finish(None)
        else:
            error = ConnectionError(f"the connection was lost: {exc}")
            error.__cause__ = exc
            self._finish(error)
        self._wake(ConnectionError("the connection closed"))

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake(None)

    # -- for writers --------------------------------------------------------------------------------

    async def drain(self) -> None:
        """Wait while the transport's write buffer is over its high-water mark; ConnectionError once closed."""
        if self.done.done() and self._transport.is_closing():
            raise ConnectionError("the connection closed")
        if not self._paused:
            return
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _wake(self, error) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                if error is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(error)

    def _finish(self, outcome) -> None:
        if self.done.done():
            return
        if outcome is None:
            self.done.set_result(None)
        else:
            self.done.set_exception(outcome)
            self.done.exception()  # retrieved here: a peer closed before run() was awaited logs nothing
