"""Large received `bytes` made again out of earlier ones that nobody holds any more.

A fresh 50 MB `bytes` costs its page faults and the kernel's zeroing of every page, more than the copy that fills
it, and on a VM that hands freed memory back to its host (free page reporting) sometimes ten times more
(bench/README.md, "Bytes"). So the last few large `bytes` this process received stay referenced here; when one of
the same size is received again and the only reference left to an earlier one is ours, that object is filled
instead, as CPython's own readers fill a `bytes` nobody else has seen. An object anyone still holds (a variable,
a list, a memoryview, a numpy array over it) has more references and is never touched. Kept objects nobody used for
IDLE_S are let go, so an idle extension holds none.
"""

from __future__ import annotations

import ctypes
import sys
import sysconfig
import time

MAX_KEPT = 4
MAX_BYTES = 256 * 1024 * 1024
IDLE_S = 1.0


def _hash_slot(address, data: bytes):
    """The cached hash of `data`, which CPython 3.9 to 3.13 keep just before its contents (`ob_shash`); `address` is
    CPython's PyBytes_AsString."""
    return ctypes.c_ssize_t.from_address(address(data) - ctypes.sizeof(ctypes.c_ssize_t))


def usable_address(address):
    """`address` (PyBytes_AsString, None where there is none) if a bytes object's cached hash is where _hash_slot
    looks (a reused object's hash must be reset), else None: then nothing is reused."""
    if address is None or sys.implementation.name != "cpython" or sysconfig.get_config_var("Py_GIL_DISABLED"):
        return None  # free-threaded builds count references per thread: take()'s test would not hold
    try:
        probe = bytes(range(40))
        value = hash(probe)  # computed and cached first
        return address if _hash_slot(address, probe).value == value else None
    except (OSError, ValueError):
        return None


class Recycler:
    """The kept objects, their sizes and when each was last handed out; bound to the event loop that trims them."""

    def __init__(self, address) -> None:
        self._address = address  # PyBytes_AsString, checked by usable_address; None: nothing is kept or reused
        self._kept = []  # [bytes object, last handed out (monotonic)]
        self._held = 0
        self._loop = None
        self._timer = None

    def bind(self, loop) -> None:
        """Keep objects from now on, trimmed on `loop` (without a loop nothing is kept)."""
        self._loop = loop

    def take(self, size: int):
        """An earlier object of exactly `size` bytes that only we hold, its cached hash reset; else None."""
        kept = self._kept
        for i in range(len(kept)):
            # Two references: our list's and getrefcount's own argument. Bytes are not tracked by the cycle
            # collector, so nothing can find one we hold alone and take a new reference while we fill it.
            if len(kept[i][0]) == size and sys.getrefcount(kept[i][0]) == 2:
                data = kept[i][0]
                kept[i][1] = time.monotonic()
                _hash_slot(self._address, data).value = -1  # not computed: the contents are about to change
                return data
        return None

    def keep(self, data: bytes) -> None:
        """Remember `data` (just made, about to be handed out) for a later take, while there is room."""
        if self._address is None or self._loop is None:
            return
        for entry in self._kept:
            if entry[0] is data:
                return  # a reused one: kept already
        size = len(data)
        if len(self._kept) >= MAX_KEPT or self._held + size > MAX_BYTES:
            return
        self._kept.append([data, time.monotonic()])
        self._held += size
        if self._timer is None:
            self._timer = self._loop.call_later(IDLE_S, self._trim)

    def clear(self) -> None:
        self._kept = []
        self._held = 0
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @property
    def held(self) -> int:
        return self._held

    def _trim(self) -> None:
        self._timer = None
        now = time.monotonic()
        fresh = [entry for entry in self._kept if now - entry[1] < IDLE_S]
        self._held = sum(len(entry[0]) for entry in fresh)
        self._kept = fresh
        if fresh and self._loop is not None:  # again when the first of those has been idle for IDLE_S
            self._timer = self._loop.call_later(IDLE_S - (now - min(entry[1] for entry in fresh)), self._trim)
