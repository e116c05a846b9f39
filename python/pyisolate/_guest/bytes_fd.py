"""Large bytes as a sealed memfd beside the frame: one copy into it here, one copy out on the other side."""

from __future__ import annotations

import fcntl
import os
import threading

from . import fresh_bytes

F_ADD_SEALS = 1033
F_GET_SEALS = 1034
F_SEAL_SEAL = 0x0001
F_SEAL_SHRINK = 0x0002
F_SEAL_GROW = 0x0004
F_SEAL_WRITE = 0x0008
_SEALS = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL


class OwnedFd:
    """Keeps a memfd open until the fd channel has sent it (or the frame is dropped), then closes it."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __del__(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass


def write_memfd(data) -> OwnedFd:
    """A memfd holding a copy of `data` (any bytes-like), sealed against every change.

    Raises OSError where memfd is unavailable; the caller then sends the bytes in the frame.
    """
    fd = os.memfd_create("pyisolate-bytes", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    owned = OwnedFd(fd)
    with memoryview(data) as view, view.cast("B") as flat:
        size = flat.nbytes
        done = 0
        while done < size:
            done += os.pwrite(fd, flat[done : done + fresh_bytes.MAX_IO], done)
    fcntl.fcntl(fd, F_ADD_SEALS, _SEALS)
    return owned


def read_memfd(fd: int, size: int) -> bytes:
    """`size` bytes of a received memfd as `bytes` (one copy). ValueError unless it is sealed against shrinking and
    holds that many."""
    try:
        seals = fcntl.fcntl(fd, F_GET_SEALS)
    except OSError as e:
        raise ValueError(f"$bytes names an fd that is not a sealed memfd ({e.strerror})") from None
    if not seals & F_SEAL_SHRINK:
        raise ValueError(f"$bytes names an fd that is not sealed against shrinking (seals {seals:#x})")
    if os.fstat(fd).st_size < size:
        raise ValueError(f"$bytes declares {size} bytes, more than its fd holds")
    data = fresh_bytes.pread_bytes(fd, size)
    if len(data) != size:
        raise ValueError(f"$bytes fd ended after {len(data)} of {size} bytes")
    return data


def release(fd: int, size: int) -> None:
    """Closes a received memfd of `size` bytes. The last close of a large one frees its pages (about 7 ms for 50 MB):
    a short-lived thread does that while this one carries on with the call (os.close releases the GIL). A memfd not
    sealed against writing is one of the host's pool (it keeps it): closing it frees nothing."""
    if size >= fresh_bytes.MIN_SIZE and _sealed_against_writing(fd):
        try:
            threading.Thread(target=_close_quietly, args=(fd,), name="pyisolate-close", daemon=True).start()
            return
        except RuntimeError:  # no thread to be had (a process limit): close it here
            pass
    _close_quietly(fd)


def _sealed_against_writing(fd: int) -> bool:
    try:
        return bool(fcntl.fcntl(fd, F_GET_SEALS) & F_SEAL_WRITE)
    except OSError:
        return False


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
