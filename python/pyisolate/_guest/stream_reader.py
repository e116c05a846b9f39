"""The reading end of a stream call the extension makes: items queued within the credit it grants, its end, its cancel."""

from __future__ import annotations

import collections

from .framing import ProtocolError


class StreamReader:
    """An async iterator over the items of one stream call of ours (docs/protocol.md, Streams).

    The first `__anext__` opens the call (`_open`, the subclass's); at most `window` items wait here unread, and each
    time half a window was taken that many more are granted. `aclose()` tells the other side to stop. The peer feeds
    it: `accept` (an item; one past the credit is a ProtocolError), `finish` (the call's end, an error or None).
    """

    window = 16

    def __init__(self, peer) -> None:
        self._peer = peer
        self._cid = None
        self._queue = collections.deque()
        self._waiter = None
        self._end = None  # None, or (error or None)
        self._granted = 0
        self._received = 0
        self._taken = 0
        self._closed = False

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self._cid is None:
            self._start()
        if self._queue:
            return self._take()
        if self._closed:
            raise StopAsyncIteration
        if self._end is not None:
            return self._finish()
        self._waiter = self._peer._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None
        if self._queue:
            return self._take()
        return self._finish()

    async def aclose(self) -> None:
        """Stop reading: the other side closes its iterator."""
        self.abandon()

    def abandon(self) -> None:
        """aclose() without the await; nothing is sent for a stream never opened or already ended."""
        if self._closed:
            return
        self._closed = True
        self._queue.clear()
        if self._cid is not None and self._end is None:
            self._peer._cancel_stream(self._cid)

    def _open(self) -> int:
        """Send the stream call granting `self.window` items; return its id."""
        raise NotImplementedError

    def _start(self) -> None:
        self._granted = self.window
        self._cid = self._open()

    def _take(self):
        item = self._queue.popleft()
        self._taken += 1
        if self._end is None and self._taken >= max(1, self.window // 2):
            self._peer._grant(self._cid, self._taken)
            self._granted += self._taken
            self._taken = 0
        return item

    def _finish(self):
        error, self._end = self._end, (None,)
        self._closed = True
        if error[0] is not None:
            raise error[0]
        raise StopAsyncIteration

    # -- fed by the peer -----------------------------------------------------------------------

    def accept(self, value) -> None:
        if self._received >= self._granted:
            raise ProtocolError(f"item {self._cid}: more items than the {self._granted} granted")
        self._received += 1
        if self._closed:
            return
        self._queue.append(value)
        self._wake()

    def finish(self, error=None) -> None:
        if self._end is None:
            self._end = (error,)
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
