"""The transport of the host's Unix socket: the loop's reader callback reads a chunk and hands it over.

asyncio's selector transport costs every chunk and every write steps this connection never needs (its SSL and
buffered-protocol switches, per-write type and state checks, a copy of whatever it cannot send at once). Interleaved
on one CPU, a whole small call measured 0.3-0.5 µs faster over this one (decision 61). A protocol whose `in_place` is
set (the Link, while a large frame arrives: large_frame.py) has the socket read straight into the buffer it names.
The TCP+TLS link keeps asyncio's transport (tcp_link.py).
"""

from __future__ import annotations

import collections
import socket

RECV_BYTES = 64 * 1024  # one recv's most: 64 KiB stays on glibc's heap (256 KiB would mmap every small chunk)
READS_PER_WAKE = 16  # a full read suggests more waits: read on, up to this many times, before the loop polls again
HIGH_WATER = 64 * 1024  # pause_writing() once more than this waits to be sent (asyncio's default)
LOW_WATER = HIGH_WATER // 4  # resume_writing() once it is down to this


class SocketTransport:
    """The asyncio transport calls a Link uses, on a connected stream socket it owns from now on.

    Like asyncio's transports it calls the protocol's data_received, eof_received, connection_lost, pause_writing and
    resume_writing, and connection_lost exactly once, from the loop, after which the socket is closed. A write goes to
    the socket at once when nothing waits before it; what the socket does not take waits, in order, until it is
    writable (bytes as they are, other buffers copied: their owner may reuse them after write() returns).
    """

    def __init__(self, loop, sock: socket.socket) -> None:
        sock.setblocking(False)
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._protocol = None
        self._recv = sock.recv
        self._send = sock.send
        self._waiting = collections.deque()  # memoryviews of bytes not yet sent, oldest first
        self._waiting_bytes = 0
        self._paused = False
        self._closing = False  # close() was called, or the connection ended
        self._lost = False  # connection_lost is scheduled

    def set_protocol(self, protocol) -> None:
        """Deliver to `protocol` from now on; the first call starts reading."""
        starting = self._protocol is None
        self._protocol = protocol
        if starting and not self._closing:
            self._loop.add_reader(self._fd, self._read_ready)

    def get_protocol(self):
        return self._protocol

    # -- reading ---------------------------------------------------------------------------------------

    def _read_ready(self) -> None:
        protocol = self._protocol
        for _ in range(READS_PER_WAKE):
            target = getattr(protocol, "in_place", None)
            try:
                if target is None:
                    data = self._recv(RECV_BYTES)
                    n = len(data)
                else:
                    with target.read_into() as view:  # released here: its buffer is let go once the frame is whole
                        room = view.nbytes
                        n = self._sock.recv_into(view)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self._end(e)
                return
            if not n:
                self._loop.remove_reader(self._fd)
                if not protocol.eof_received():
                    self.close()
                return
            try:
                if target is None:
                    protocol.data_received(data)
                else:
                    protocol.bytes_read(n)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as e:  # as asyncio does: a protocol that cannot take its data ends the connection
                self._end(e)
                return
            if self._closing or n < (RECV_BYTES if target is None else room):
                return  # the socket had no more: the next wake-up brings the rest

    # -- writing ---------------------------------------------------------------------------------------

    def write(self, data) -> None:
        if self._closing:
            return
        if self._waiting:
            self._keep(_owned(data))
            return
        try:
            sent = self._send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as e:
            self._end(e)
            return
        if sent < (len(data) if type(data) is bytes else memoryview(data).nbytes):
            self._loop.add_writer(self._fd, self._write_ready)
            self._keep(_owned(data)[sent:])

    def _keep(self, view: memoryview) -> None:
        self._waiting.append(view)
        self._waiting_bytes += view.nbytes
        if not self._paused and self._waiting_bytes > HIGH_WATER:
            self._paused = True
            self._protocol.pause_writing()

    def _write_ready(self) -> None:
        waiting = self._waiting
        while waiting:
            view = waiting[0]
            try:
                sent = self._send(view)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self._end(e)
                return
            self._waiting_bytes -= sent
            if sent < view.nbytes:
                waiting[0] = view[sent:]
                break
            waiting.popleft()
        if self._paused and self._waiting_bytes <= LOW_WATER:
            self._paused = False
            self._protocol.resume_writing()
        if not waiting:
            self._loop.remove_writer(self._fd)
            if self._closing:
                self._end(None)

    def get_write_buffer_size(self) -> int:
        return self._waiting_bytes

    # -- ending ----------------------------------------------------------------------------------------

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Stop reading; the connection ends once what waits has been sent."""
        if self._closing:
            return
        self._closing = True
        self._loop.remove_reader(self._fd)
        if not self._waiting:
            self._end(None)

    def abort(self) -> None:
        """End now; what waits is dropped."""
        self._end(None)

    def _end(self, error) -> None:
        if self._lost:
            return
        self._closing = self._lost = True
        self._waiting.clear()
        self._waiting_bytes = 0
        self._loop.remove_reader(self._fd)
        self._loop.remove_writer(self._fd)
        self._loop.call_soon(self._lose, error)

    def _lose(self, error) -> None:
        try:
            if self._protocol is not None:
                self._protocol.connection_lost(error)
        finally:
            self._sock.close()

    def get_extra_info(self, name, default=None):
        return self._sock if name == "socket" else default


def _owned(data) -> memoryview:
    """A flat byte view of `data` that stays as it is: bytes viewed, anything else copied."""
    return memoryview(data if type(data) is bytes else bytes(data))
