"""Releases noticed by finalizers (on any thread), sent to the host in batches from the event loop."""

from __future__ import annotations

import collections


class ReleaseBatch:
    """Collects ids of things this process let go and sends them in one message per loop turn.

    `dedupe` sends each id once per batch (segments: the host forgets a holder, not a count); without it
    every release is sent (CUDA handles: the host counts how many times each one is held).
    """

    def __init__(self, dedupe: bool, on_unbind=None) -> None:
        self._dead = collections.deque()  # appended from finalizers, which run on any thread
        self._dedupe = dedupe
        self._on_unbind = on_unbind
        self._loop = None
        self._send = None
        self._scheduled = False

    @property
    def bound(self) -> bool:
        return self._loop is not None

    def bind(self, loop, send) -> None:
        self._loop, self._send = loop, send

    def unbind(self) -> None:
        self._loop = self._send = None
        self._dead.clear()
        if self._on_unbind is not None:
            self._on_unbind()

    def add(self, item) -> None:
        loop = self._loop
        if loop is None:
            return
        self._dead.append(item)
        if not self._scheduled:
            self._scheduled = True
            try:
                loop.call_soon_threadsafe(self._flush)
            except RuntimeError:  # the loop is closed: nobody left to tell
                pass

    def _flush(self) -> None:
        self._scheduled = False
        items = []
        while self._dead:
            items.append(self._dead.popleft())
        if items and self._send is not None:
            self._send(sorted(set(items)) if self._dedupe else items)
