"""The floor's Python side: echoes length-prefixed frames on fd 3 with no JSON and no dispatch.

`python3 floor_peer.py blocking`: recv_into a fixed buffer and sendall, the least a Python process can do per frame.
`python3 floor_peer.py asyncio`: the same over an asyncio Protocol, on the event loop our guest runs on (guest_loop.py).
"""

import asyncio
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from pyisolate._guest.guest_loop import new_event_loop  # noqa: E402

FD = 3
_LEN = struct.Struct(">I")


def frames(buf: bytearray, end: int):
    """(end of the last complete frame) for the frames in buf[:end]."""
    pos = 0
    while end - pos >= 4:
        n = _LEN.unpack_from(buf, pos)[0]
        if end - pos - 4 < n:
            break
        pos += 4 + n
    return pos


def blocking() -> None:
    sock = socket.socket(fileno=FD)
    sock.setblocking(True)
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    have = 0
    while True:
        n = sock.recv_into(view[have:])
        if n == 0:
            return
        have += n
        done = frames(buf, have)
        if done:
            sock.sendall(view[:done])  # echo every complete frame as it came
            buf[: have - done] = buf[done:have]
            have -= done


class Echo(asyncio.BufferedProtocol):
    def __init__(self, closed) -> None:
        self.buf = bytearray(1 << 20)
        self.view = memoryview(self.buf)
        self.have = 0
        self.closed = closed

    def connection_made(self, transport) -> None:
        self.transport = transport

    def get_buffer(self, sizehint):
        return self.view[self.have :]

    def buffer_updated(self, nbytes) -> None:
        self.have += nbytes
        done = frames(self.buf, self.have)
        if done:
            self.transport.write(bytes(self.view[:done]))
            self.buf[: self.have - done] = self.buf[done : self.have]
            self.have -= done

    def connection_lost(self, exc) -> None:
        self.closed.set_result(None)


async def run_asyncio() -> None:
    loop = asyncio.get_running_loop()
    closed = loop.create_future()
    await loop.connect_accepted_socket(lambda: Echo(closed), socket.socket(fileno=FD))
    await closed


if __name__ == "__main__":
    if sys.argv[1] == "blocking":
        blocking()
    else:
        loop = new_event_loop()
        loop.run_until_complete(run_asyncio())
