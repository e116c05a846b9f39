"""A fresh `bytes` filled from a file, its memory advised into 2 MiB pages first: a 50 MB read then takes about 25
page faults instead of 12,800, which were most of its cost (bench/README.md, "Bytes")."""

from __future__ import annotations

import ctypes
import os

from .reused_bytes import Recycler, usable_address

HUGE_PAGE = 2 * 1024 * 1024
MIN_SIZE = 2 * HUGE_PAGE  # below this at most one aligned huge page fits: a plain pread costs no more
MAX_IO = 0x7FFFF000  # Linux moves at most this many bytes per read or write
_MADV_HUGEPAGE = 14


class _Calls:
    """The C calls: CPython's bytes constructor (uninitialised contents) and madvise. Own library handles, so the
    argument types set here never change ctypes.pythonapi for the extension's code."""

    __slots__ = ("new", "address", "madvise")

    def __init__(self) -> None:
        api = ctypes.PyDLL(None)
        self.new = api.PyBytes_FromStringAndSize
        self.new.restype = ctypes.py_object
        self.new.argtypes = (ctypes.c_void_p, ctypes.c_ssize_t)
        self.address = api.PyBytes_AsString
        self.address.restype = ctypes.c_void_p
        self.address.argtypes = (ctypes.py_object,)
        self.madvise = ctypes.CDLL(None).madvise
        self.madvise.restype = ctypes.c_int
        self.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)


def _load() -> _Calls | None:
    try:
        return _Calls()
    except (OSError, AttributeError):  # not CPython (no bytes C API), or no madvise: plain reads
        return None


CALLS = _load()
# Large received bytes made again out of earlier ones nobody holds (reused_bytes.py); bound to a loop by the peer.
RECYCLER = Recycler(usable_address(CALLS.address if CALLS is not None else None))


def fillable_bytes(size: int):
    """(data, view): a `bytes` of `size` bytes that nobody else holds (an earlier one only the recycler held, or a new
    one with its big pages advised) and a writable view of its contents, to fill before `data` is handed out (and
    given to RECYCLER.keep). None below MIN_SIZE or without CPython's bytes API: the caller makes its bytes as usual.

    Filling a `bytes` nobody has seen yet is what CPython's own readers do."""
    if CALLS is None or size < MIN_SIZE:
        return None
    data = RECYCLER.take(size)
    if data is None:
        data = CALLS.new(None, size)
        addr = CALLS.address(data)
        start = (addr + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1)
        end = (addr + size) & ~(HUGE_PAGE - 1)
        if end > start:
            CALLS.madvise(start, end - start, _MADV_HUGEPAGE)  # EINVAL where THP is off or absent: 4 KiB pages then
    else:
        addr = CALLS.address(data)
    return data, memoryview((ctypes.c_char * size).from_address(addr)).cast("B")


def pread_bytes(fd: int, size: int) -> bytes:
    """`size` bytes of `fd` from offset 0 (fewer where the file ends first) as a new `bytes`."""
    made = fillable_bytes(size)
    if made is None:
        return _pread_plain(fd, size)
    data, view = made
    with view:
        done = 0
        while done < size:
            n = os.preadv(fd, [view[done : done + MAX_IO]], done)
            if n <= 0:
                return bytes(view[:done])  # the caller sees the short length
            done += n
    RECYCLER.keep(data)
    return data


def _pread_plain(fd: int, size: int) -> bytes:
    if size <= MAX_IO:
        return os.pread(fd, size, 0)
    return b"".join(os.pread(fd, min(MAX_IO, size - at), at) for at in range(0, size, MAX_IO))
