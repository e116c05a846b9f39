"""Streams from host services: what a ProxiedSingleton method declared as a generator returns (an async iterator)."""

from __future__ import annotations

import asyncio
import inspect
import threading
import weakref

from . import protocol as P
from .stream_reader import StreamReader


def streams(func) -> bool:
    """A method written as a generator (`def ... yield` or `async def ... yield`) is a stream of the host service."""
    func = inspect.unwrap(func)
    return inspect.isasyncgenfunction(func) or inspect.isgeneratorfunction(func)


class _ServiceReader(StreamReader):
    def __init__(self, peer, target: str, method: str, args, kwargs) -> None:
        super().__init__(peer)
        self._call = (target, method, args, kwargs)

    def _open(self) -> int:
        target, method, args, kwargs = self._call
        self._call = (target, method, None, None)  # the arguments are sent: tensors in them need not live on here
        return self._peer._open_service_stream(self, target, method, args, kwargs, self.window)


def _dropped(reader: _ServiceReader) -> None:
    """The ServiceStream was collected: cancel its call (from any thread, as a finalizer may run on one)."""
    loop = reader._peer._loop
    if threading.get_ident() == reader._peer._thread:
        reader.abandon()
        return
    try:
        loop.call_soon_threadsafe(reader.abandon)
    except RuntimeError:  # the loop is closed: the connection went with it
        pass


class ServiceStream:
    """The items of a host service method that streams (`async for token in Chat().generate(prompt):`).

    Nothing is sent until the first read, as with an async generator; then the host runs its method and sends at most
    `window` items (default 16, settable before the first read) ahead of this reader. The stream is cancelled, and the
    host's iterator closed (its `return()`, so its `finally` runs), by `aclose()`, by cancelling the task waiting in
    a read, or by dropping the stream unfinished (an `async for` over `Chat().generate(...)` left with `break`).
    An error the host's iterator throws is raised by the read after the items before it.
    """

    __slots__ = ("_reader", "_what", "__weakref__")

    def __init__(self, peer, target: str, method: str, args, kwargs) -> None:
        self._reader = _ServiceReader(peer, target, method, args, kwargs)
        self._what = f"{target}.{method}"
        weakref.finalize(self, _dropped, self._reader).atexit = False  # at exit the connection goes anyway

    def __repr__(self) -> str:
        return f"<ServiceStream {self._what}>"

    def __aiter__(self):
        return self

    def __await__(self):
        raise TypeError(f"{self._what} streams: read it with `async for`, not `await`")

    @property
    def window(self) -> int:
        return self._reader.window

    @window.setter
    def window(self, n: int) -> None:
        if self._reader._cid is not None:
            raise RuntimeError(f"{self._what}: the window is set before the first read")
        if type(n) is not int or not 1 <= n <= P.MAX_STREAM_WINDOW:
            raise ValueError(f"window must be an int from 1 to {P.MAX_STREAM_WINDOW}, got {n!r}")
        self._reader.window = n

    async def __anext__(self):
        reader = self._reader
        if threading.get_ident() != reader._peer._thread:
            raise RuntimeError(f"read {self._what} on the extension's event loop (an async def method), not a thread")
        try:
            return await reader.__anext__()
        except asyncio.CancelledError:
            reader.abandon()  # the reading task was cancelled: the host stops too
            raise

    async def aclose(self) -> None:
        """Stop reading: the host closes its iterator."""
        self._reader.abandon()
