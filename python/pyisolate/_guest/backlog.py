"""The bound on events waiting to reach the host: a producer thread blocks, the event loop's own emit fails."""

from __future__ import annotations

import asyncio
import threading

# What may wait in the writer before an emit is held back: far above what a host that reads keeps buffered, far
# below what would exhaust the extension's memory while the host does not read.
DEFAULT_MAX_BYTES = 16 * 1024 * 1024


class EventBacklog:
    """Counts the bytes of events queued for the loop to write plus the transport's buffer, and holds emits past `max_bytes`.

    An event larger than `max_bytes` still passes when nothing waits, so that no single event is refused for its size
    alone (the frame limit bounds that).
    """

    def __init__(self, loop, loop_thread: int, buffered, drain, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._loop = loop
        self._loop_thread = loop_thread
        self._buffered = buffered  # () -> bytes in the transport's buffer
        self._drain = drain  # async () -> None: waits until the transport's buffer is low
        self._lock = threading.Lock()
        self._scheduled = 0  # bytes handed to the loop by other threads, not yet written
        self.max_bytes = max_bytes

    def admit(self, size: int) -> None:
        """Before an event of `size` bytes is queued: returns once it may be, or raises BufferError on the loop's thread."""
        if threading.get_ident() == self._loop_thread:
            waiting = self._buffered()
            if waiting > 0 and waiting + size > self.max_bytes:
                # The loop cannot wait for itself to write: the method that emits fails, with the reason.
                raise BufferError(
                    f"event backlog full: {waiting} bytes of events wait for the host to read, the limit is "
                    f"{self.max_bytes}; emit from a thread (it blocks until the host reads) or emit less often"
                )
            return
        while True:
            with self._lock:
                waiting = self._scheduled + self._buffered()
                if waiting == 0 or waiting + size <= self.max_bytes:
                    self._scheduled += size
                    return
            # Block this producer until the loop has written what it was handed and the host has read enough.
            asyncio.run_coroutine_threadsafe(self._drain(), self._loop).result()

    def written(self, size: int) -> None:
        """The loop wrote an event a thread handed it."""
        with self._lock:
            self._scheduled -= size
