"""Local stand-ins for callables the other side exported, released when garbage-collected."""

from __future__ import annotations

import collections
import weakref


class RemoteFunction:
    """A callable the other side sent as {"$fn": id}; calling it returns an awaitable result.

    Keyword arguments travel as the call's `kw` (a JavaScript function gets them as one trailing
    object). When the proxy is collected, the peer tells the other side it may forget the callable
    (a batched `release`).
    """

    __slots__ = ("_peer", "_fn_id", "__weakref__")

    def __init__(self, peer, fn_id: int) -> None:
        self._peer = peer
        self._fn_id = fn_id

    def __call__(self, *args, **kwargs):
        return self._peer.call_fn(self._fn_id, args, kwargs)

    def __repr__(self) -> str:
        return f"<RemoteFunction {self._fn_id}>"


class ProxyTable:
    """The peer's proxies by id, and the ids whose proxies died and still need a `release`."""

    def __init__(self, loop, send_release) -> None:
        self._loop = loop
        self._send_release = send_release
        self._live = weakref.WeakValueDictionary()
        self._dead = collections.deque()  # appended from finalizers, which run on any thread
        self._scheduled = False
        self.closed = False

    def get(self, peer, fn_id: int) -> RemoteFunction:
        proxy = self._live.get(fn_id)
        if proxy is None:
            proxy = RemoteFunction(peer, fn_id)
            self._live[fn_id] = proxy
            weakref.finalize(proxy, self._on_collected, fn_id)
        return proxy

    def forget(self, fn_id: int) -> None:
        """Release id `fn_id` (a host stream never read); safe from any thread, like a collected proxy."""
        self._on_collected(fn_id)

    def _on_collected(self, fn_id: int) -> None:
        if self.closed:
            return
        self._dead.append(fn_id)
        if not self._scheduled:
            self._scheduled = True
            try:
                self._loop.call_soon_threadsafe(self._flush)
            except RuntimeError:  # the loop is already closed: nobody left to tell
                pass

    def _flush(self) -> None:
        self._scheduled = False  # before draining, so a concurrent append schedules again
        ids = []
        dead = self._dead
        while dead:
            ids.append(dead.popleft())
        if ids and not self.closed:
            self._send_release(ids)
