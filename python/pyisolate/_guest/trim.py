"""Hands freed heap back to the system after a large frame: glibc would keep it, and the extension's RSS with it."""

from __future__ import annotations

import ctypes

LARGE_FRAME = 4 * 1024 * 1024  # frames at least this big leave buffers behind worth giving back
_DELAY_S = 0.05  # after the reply has left the transport's buffer, and once for a burst of large frames


class Trimmer:
    """Calls glibc's malloc_trim(0) shortly after the last large frame, once `buffered()` (the bytes the transport
    still holds to write: a large reply) is 0; does nothing where there is no glibc."""

    def __init__(self, loop, buffered) -> None:
        self._loop = loop
        self._buffered = buffered
        self._timer = None
        self._trim = _malloc_trim()

    def large_frame(self) -> None:
        if self._trim is None:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(_DELAY_S, self._run)

    def _run(self) -> None:
        if self._buffered():
            self._timer = self._loop.call_later(_DELAY_S, self._run)  # the reply's buffer is freed once it is sent
            return
        self._timer = None
        self._trim(0)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim  # the process's own symbols: libc is loaded, nothing is searched for
    except (OSError, AttributeError):  # musl, or no libc to load: nothing to trim with
        return None
