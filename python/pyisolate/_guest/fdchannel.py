"""The socket that carries file descriptors beside the stream (fd 4): tensor segments by SCM_RIGHTS."""

from __future__ import annotations

import collections
import os
import socket
import stat

from . import segments
from .framing import ProtocolError

MAX_FDS_PER_MESSAGE = 253  # the kernel's SCM_MAX_FD


class FdChannel:
    """One end of the seqpacket socket the host made.

    Before a frame that carries fds is written, its fds are sent here in messages whose bytes are
    their count (ASCII); the frame header's "f" says how many to collect. When the socket is full,
    that frame and every later one wait, in order, until it drains (the loop watches the fd).
    """

    def __init__(self, fd: int, loop) -> None:
        self._sock = socket.socket(fileno=fd)
        self._sock.setblocking(False)
        self._loop = loop
        self._queue = collections.deque()  # [fds, keep, sent, write]
        self._watching = False
        self.closed = False

    @staticmethod
    def open(fd: int, loop):
        """The channel on `fd`, or None when that fd is not a socket (an old host, or copy mode)."""
        try:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                return None
        except OSError:
            return None
        return FdChannel(fd, loop)

    @property
    def queued(self) -> int:
        return len(self._queue)

    def submit(self, fds: list, keep: list, write) -> None:
        """Send `fds` (kept open by `keep` until sent), then call write()."""
        if self.closed:
            return
        self._queue.append([fds, keep, 0, write])
        if len(self._queue) == 1:
            self._flush()

    def receive(self, count: int) -> list:
        """The `count` fds announced by a frame just read; ProtocolError if they are not waiting."""
        got = []
        try:
            while len(got) < count:
                try:
                    msg, fds, flags, _ = socket.recv_fds(self._sock, 16, MAX_FDS_PER_MESSAGE)
                except BlockingIOError:
                    msg, fds, flags = b"", [], 0
                got.extend(fds)
                if not msg:
                    raise ProtocolError(f"a frame announced {count} file descriptors but {len(got)} arrived")
                if flags & (socket.MSG_CTRUNC | socket.MSG_TRUNC) or msg != str(len(fds)).encode() or len(got) > count:
                    raise ProtocolError(f"the file descriptors sent with a frame do not match its count of {count}")
            return got
        except BaseException:
            for fd in got:
                os.close(fd)
            raise

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._queue.clear()
        if self._watching:
            self._loop.remove_writer(self._sock.fileno())
            self._watching = False
        self._sock.close()

    def _flush(self) -> None:
        queue = self._queue
        while queue and not self.closed:
            entry = queue[0]
            fds = entry[0]
            try:
                while entry[2] < len(fds):
                    part = fds[entry[2] : entry[2] + MAX_FDS_PER_MESSAGE]
                    socket.send_fds(self._sock, [str(len(part)).encode()], part)
                    entry[2] += len(part)
            except BlockingIOError:
                if not self._watching:
                    self._watching = True
                    self._loop.add_writer(self._sock.fileno(), self._flush)
                return
            except OSError:
                entry[2] = len(fds)  # the host is gone; the stream reports the end
            queue.popleft()
            for seg in entry[1] or ():
                if isinstance(seg, segments.Segment):
                    segments.keep(seg)  # the host holds it now: it goes back by id until the host releases it
            entry[3]()
        if self._watching:
            self._watching = False
            self._loop.remove_writer(self._sock.fileno())
