"""The health heartbeat: a runtime thread on its own socket (fd 5) answers the host's pings outside the event loop.

Each ping byte gets 4 bytes back (big-endian): how many milliseconds the event loop has left a wake-up pending, 0
when it runs. The thread answering at all proves the GIL is free (a C call holding it stops the thread too); the
age proves the loop itself runs (a busy Python loop in a sync method lets the thread run, not the loop).
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time

HEARTBEAT_FD = 5
_MAX_AGE_MS = 0xFFFFFFFF


class Heartbeat:
    def __init__(self, sock: socket.socket, loop) -> None:
        self._sock = sock
        self._loop = loop
        self._lock = threading.Lock()
        self._pending_since: float | None = None  # when the wake-up not yet run by the loop was scheduled

    def _woken(self) -> None:
        with self._lock:
            self._pending_since = None

    def _answer(self) -> bytes:
        now = time.monotonic()
        with self._lock:
            since = self._pending_since
            if since is None:
                self._pending_since = now
        if since is None:
            self._loop.call_soon_threadsafe(self._woken)
            return struct.pack(">I", 0)
        return struct.pack(">I", min(int((now - since) * 1000), _MAX_AGE_MS))

    def run(self) -> None:
        try:
            while True:
                pings = self._sock.recv(64)
                if not pings:
                    return  # the host closed it: health is off or the host is gone
                self._sock.sendall(b"".join(self._answer() for _ in pings))
        except (OSError, RuntimeError):
            return  # the socket or the loop is closed: the process is ending


def start_on(sock, loop) -> None:
    """Answer pings on `sock` (the TCP transport's heartbeat connection) from a daemon thread."""
    threading.Thread(target=Heartbeat(sock, loop).run, name="pyisolate-heartbeat", daemon=True).start()


def start(loop) -> bool:
    """Answer pings on fd 5 if the host gave one; a daemon thread, so it never keeps the process alive at exit."""
    try:
        sock = socket.socket(fileno=HEARTBEAT_FD)
    except OSError:
        return False  # the host did not ask for health checks
    if sock.type != socket.SOCK_STREAM:
        sock.detach()
        return False
    os.set_inheritable(HEARTBEAT_FD, False)  # the extension's subprocesses never get it
    thread = threading.Thread(target=Heartbeat(sock, loop).run, name="pyisolate-heartbeat", daemon=True)
    thread.start()
    return True
