"""The guest's reusable memfds for the large bytes it sends: written again, never freshly allocated, per value.

A fresh memfd costs its page allocation on every send (about 30 ms for 50 MB here: 12,800 shared-memory pages);
a pooled one has its pages already, and a copy into our own mapping of it takes about 6 ms. The host copies a
lent memfd's bytes out while it decodes the frame and then hands its number back (`release` with `bytes`), so
the next value can be written into it (docs/protocol.md#bytes).
"""

from __future__ import annotations

import fcntl
import mmap
import os
import threading
import time

from . import bytes_fd, fresh_bytes

MAX_ENTRIES = 8  # each is an fd and a mapping
MAX_BYTES = 256 * 1024 * 1024  # their sizes added up
IDLE_S = 1.0  # a memfd nobody used for this long is closed: the pool serves bursts, and an idle guest holds nothing
MIN_CAPACITY = 64 * 1024
# Sealed against shrinking and growing (the host reads a file of a fixed size) and against new seals; not against
# writing, so it can be written again.
_SEALS = bytes_fd.F_SEAL_SHRINK | bytes_fd.F_SEAL_GROW | bytes_fd.F_SEAL_SEAL


class _Entry:
    __slots__ = ("number", "fd", "capacity", "view", "written", "busy", "idle_since")

    def __init__(self, number: int, fd: int, capacity: int) -> None:
        self.number = number
        self.fd = fd
        self.capacity = capacity
        self.view = None  # our shared mapping, made after the first write (a first write through it faults each page)
        self.written = False
        self.busy = False
        self.idle_since = 0.0


class BytesPool:
    """Up to MAX_ENTRIES memfds lent to outgoing bytes, each until the host says it has read it.

    `lend` may run on any thread (a lock guards the entries); `returned` and the idle trim run on the loop's.
    """

    def __init__(self, loop) -> None:
        self._loop = loop
        self._loop_thread = threading.get_ident()  # made on the loop's thread (peer.enable_tensors)
        self._lock = threading.Lock()
        self._entries = {}  # number -> _Entry
        self._numbers = 0
        self._held = 0
        self._timer = None
        self._closed = False

    def lend(self, flat: memoryview):
        """A memfd holding `flat` (a byte-format view), as (fd, its number), or None when the pool is full or a
        memfd cannot be made or written (out of memory: the caller then tries a fresh sealed one, else sends the
        bytes in the frame)."""
        size = flat.nbytes
        entry = self._take(size)
        if entry is None:
            return None
        try:
            _write(entry, flat)
        except OSError:
            self._discard(entry)
            return None
        except BaseException:
            self._discard(entry)
            raise
        return entry.fd, entry.number

    def returned(self, numbers) -> None:
        """The host read these lent memfds (its `release` message): they may carry the next values."""
        now = time.monotonic()
        with self._lock:
            for number in numbers:
                entry = self._entries.get(number) if type(number) is int else None
                if entry is not None and entry.busy:
                    entry.busy = False
                    entry.idle_since = now
        self._arm_trim()

    def close(self) -> None:
        """Closes every memfd (the connection is gone: nobody will read or hand back one). Idempotent."""
        with self._lock:
            self._closed = True
            entries = list(self._entries.values())
            self._entries.clear()
            self._held = 0
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for entry in entries:
            _close(entry)

    @property
    def stats(self) -> dict:
        with self._lock:
            busy = sum(1 for e in self._entries.values() if e.busy)
            return {"entries": len(self._entries), "bytes": self._held, "busy": busy}

    def _take(self, size: int):
        with self._lock:
            if self._closed:
                return None
            best = None
            for entry in self._entries.values():
                if not entry.busy and entry.capacity >= size and (best is None or entry.capacity < best.capacity):
                    best = entry
            if best is not None:
                best.busy = True
                return best
            capacity = _capacity_for(size)
            if len(self._entries) >= MAX_ENTRIES or self._held + capacity > MAX_BYTES:
                return None
            try:
                fd = os.memfd_create("pyisolate-bytes-pool", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
            except (OSError, AttributeError):
                return None
            try:
                os.ftruncate(fd, capacity)
                fcntl.fcntl(fd, bytes_fd.F_ADD_SEALS, _SEALS)
            except OSError:
                os.close(fd)
                return None
            self._numbers += 1
            entry = _Entry(self._numbers, fd, capacity)
            entry.busy = True
            self._entries[entry.number] = entry
            self._held += capacity
            return entry

    def _discard(self, entry: _Entry) -> None:
        with self._lock:
            if self._entries.pop(entry.number, None) is None:
                return
            self._held -= entry.capacity
        _close(entry)

    def _arm_trim(self, delay: float = None) -> None:
        if threading.get_ident() != self._loop_thread:  # a frame given up on another thread: arm it on the loop's
            self._loop.call_soon_threadsafe(self._arm_trim)
            return
        if self._timer is None and not self._closed:
            self._timer = self._loop.call_later(IDLE_S if delay is None else delay, self._trim)

    def _trim(self) -> None:
        self._timer = None
        now = time.monotonic()
        with self._lock:
            stale = [e for e in self._entries.values() if not e.busy and now - e.idle_since >= IDLE_S]
        for entry in stale:
            self._discard(entry)
        with self._lock:
            idle = [e.idle_since for e in self._entries.values() if not e.busy]
        if idle:  # again when the first of those has been idle for IDLE_S
            self._arm_trim(IDLE_S - (now - min(idle)))


def _write(entry: _Entry, flat: memoryview) -> None:
    """`flat` at offset 0: the first time with pwrite (the pages are allocated either way, and a first write through
    a mapping faults each page in too), later through our mapping, a plain memory copy; with pwrite again where the
    mapping could not be made (an address-space limit)."""
    size = flat.nbytes
    if entry.view is not None:
        entry.view[:size] = flat
        return
    done = 0
    while done < size:
        done += os.pwrite(entry.fd, flat[done : done + fresh_bytes.MAX_IO], done)
    if not entry.written:
        entry.written = True
        try:
            entry.view = mmap.mmap(entry.fd, entry.capacity)
        except OSError:
            pass


def _close(entry: _Entry) -> None:
    view, entry.view = entry.view, None
    if view is not None:
        view.close()
    try:
        os.close(entry.fd)
    except OSError:
        pass


def _capacity_for(size: int) -> int:
    """Sizes round up to a power of two (at least 64 KiB): unwritten pages of a memfd cost nothing, and an entry then
    fits every value up to twice the size it was made for."""
    capacity = MIN_CAPACITY
    while capacity < size:
        capacity *= 2
    return capacity
