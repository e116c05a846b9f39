"""Shared memory segments: sealed memfds mapped here, found again by address, released when collected."""

from __future__ import annotations

import ctypes
import mmap
import os
import weakref

from .release_batch import ReleaseBatch

F_ADD_SEALS = 1033
F_SEAL_SHRINK = 0x0002
F_SEAL_GROW = 0x0004

_by_address = weakref.WeakValueDictionary()  # mapping start -> Segment
_by_inode = weakref.WeakValueDictionary()  # inode -> Segment
# Segments that crossed the connection, either way, kept mapped until the host releases them (its `release`
# with `segs`): while kept, they travel by id alone, with no fd to send and nothing to map on either side.
_kept = {}  # inode -> Segment


class Segment(mmap.mmap):
    """A mapping of a memfd (or any file the host sent) that owns its fd.

    Arrays over it keep it alive; when the last one goes, the mapping and the fd are closed and
    the host is told (a `release` naming the inode), so its ledger knows we no longer hold it.
    """

    def __new__(cls, fd: int, size: int):
        self = super().__new__(cls, fd, size)
        self.fd = fd
        self.size = size
        self.ino = os.fstat(fd).st_ino
        anchor = ctypes.c_char.from_buffer(self)
        self.address = ctypes.addressof(anchor)
        del anchor  # the buffer export ends here, or the mapping could never be closed
        weakref.finalize(self, _freed, fd, self.ino)
        _by_address[self.address] = self
        _by_inode[self.ino] = self
        return self

    def __repr__(self) -> str:
        return f"<Segment fd={self.fd} ino={self.ino} size={self.size}>"


def allocate(size: int) -> Segment:
    """A fresh zero-filled segment of `size` (> 0) bytes, sealed so the host may map it.

    Raises OSError where memfd is unavailable (the caller then copies into the frame).
    """
    fd = os.memfd_create("pyisolate-tensor", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        os.ftruncate(fd, size)
        import fcntl

        fcntl.fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW)
        return Segment(fd, size)
    except BaseException:
        os.close(fd)
        raise


def adopt(fd: int, size: int) -> Segment:
    """The segment for a received fd (owned from here on); the live one when we already map that file."""
    try:
        st = os.fstat(fd)
        known = _by_inode.get(st.st_ino)
        if known is not None and known.size >= size and os.fstat(known.fd).st_dev == st.st_dev:
            os.close(fd)
            return known
        if st.st_size < size:
            raise ValueError(f"a received segment holds {st.st_size} bytes, less than the {size} declared")
        return Segment(fd, size)
    except BaseException:
        try:
            os.close(fd)
        except OSError:
            pass
        raise


def keep(seg: Segment) -> None:
    """The segment crossed the connection: keep it until the host releases it (only while a host listens)."""
    if releases.bound:
        _kept[seg.ino] = seg


def kept(ino: int):
    """The kept segment with inode `ino`, or None."""
    return _kept.get(ino)


def forget(inos) -> None:
    """The host released these: arrays over them keep their mapping; the last one to go sends `release`."""
    for ino in inos:
        _kept.pop(ino, None)


def kept_count() -> int:
    """Segments kept for the host now (for tests)."""
    return len(_kept)


def containing(address: int, span: int):
    """The live segment whose mapping holds bytes [address, address + span), or None."""
    seg = _by_address.get(address)
    if seg is not None and span <= seg.size:
        return seg
    for seg in list(_by_address.values()):
        if seg.address <= address and address + span <= seg.address + seg.size:
            return seg
    return None


def live_count() -> int:
    """Segments mapped in this process now (for tests)."""
    return len(_by_address)


releases = ReleaseBatch(dedupe=True, on_unbind=_kept.clear)


def _freed(fd: int, ino: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
    releases.add(ino)
