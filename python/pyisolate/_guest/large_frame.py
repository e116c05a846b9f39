"""A large frame's attachments, read from the socket straight into the buffers they are handed out in.

Gathered from 64 KiB reads into one buffer and then copied out, a 50 MB attachment cost two fresh 50 MB allocations,
each paying its 12,800 page faults (about 30 ms apiece on this VM), and a copy. Here each attachment of 4 MiB or more
is a `bytes` made for it (fresh_bytes.py: its big pages advised, or an earlier one nobody holds) that the socket
fills; smaller ones fill a bytearray, copied into their `bytes` once complete.
"""

from __future__ import annotations

from .fresh_bytes import RECYCLER, fillable_bytes


class LargeFrame:
    """The attachments of one frame, filled in order: `read_into()` is where the next bytes go, `filled(n)` counts
    them; `fill_from(chunk)` copies them from a chunk instead."""

    def __init__(self, total: int, msg: dict, lengths) -> None:
        self.total = total  # the frame's length field, for the decoder's `largest`
        self._msg = msg
        self._parts = []  # (what is handed out, or None for a bytearray's copy; writable view)
        for n in lengths:
            made = fillable_bytes(n)
            if made is None:
                buffer = bytearray(n)
                made = None, memoryview(buffer)
            self._parts.append(made)
        self._index = 0  # the part being filled
        self._done = 0  # bytes of it filled
        self._skip_full()

    def complete(self) -> bool:
        return self._index == len(self._parts)

    def read_into(self) -> memoryview:
        """The unfilled rest of the current part (only while not complete())."""
        return self._parts[self._index][1][self._done :]

    def filled(self, n: int) -> bool:
        """`n` bytes went into read_into(); True once every part is full."""
        self._done += n
        self._skip_full()
        return self.complete()

    def fill_from(self, chunk) -> int:
        """Copies the start of `chunk` into the parts; returns how many bytes of it were taken."""
        taken = 0
        with memoryview(chunk) as source:
            while taken < source.nbytes and not self.complete():
                with self.read_into() as target:
                    n = min(target.nbytes, source.nbytes - taken)
                    target[:n] = source[taken : taken + n]
                taken += n
                self.filled(n)
        return taken

    def message(self) -> tuple:
        """(header, attachments as bytes), once complete; the views are released."""
        attachments = []
        for data, view in self._parts:
            if data is None:
                attachments.append(bytes(view))
            else:
                RECYCLER.keep(data)
                attachments.append(data)
            view.release()
        self._parts = []
        return self._msg, attachments

    def _skip_full(self) -> None:
        parts = self._parts
        while self._index < len(parts) and self._done == parts[self._index][1].nbytes:
            self._index += 1
            self._done = 0
