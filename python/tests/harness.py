"""A tiny host for the tests: spawns bootstrap.py with a socket on fd 3 and speaks to it."""

from __future__ import annotations

import asyncio
import os
import socket
import sys

from pyisolate._guest.peer import Peer

PYTHON_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOOTSTRAP = os.path.join(PYTHON_ROOT, "pyisolate", "_guest", "bootstrap.py")
FIXTURES = os.path.join(PYTHON_ROOT, "tests", "fixtures")


def fixture(name: str) -> str:
    return os.path.join(FIXTURES, name)


async def spawn_guest(python: str = sys.executable):
    """Start the guest the way the host does; return (process, our end of the socket)."""
    ours, theirs = socket.socketpair()

    def put_on_fd_3():  # runs in the child between fork and exec
        os.dup2(theirs.fileno(), 3)  # dup2's target is inheritable; the source is not

    env = dict(os.environ, PYISOLATE_CHILD="1")
    proc = await asyncio.create_subprocess_exec(
        python,
        "-I",
        "-u",
        BOOTSTRAP,
        cwd=FIXTURES,
        env=env,
        close_fds=False,
        preexec_fn=put_on_fd_3,
        stderr=asyncio.subprocess.PIPE,
    )
    theirs.close()
    return proc, ours


class Host:
    """Our Peer on the host end, with control messages queued for the test to await."""

    def __init__(self) -> None:
        self.messages = asyncio.Queue()
        self.peer = None
        self.proc = None
        self.reading = None

    async def start(self, python: str = sys.executable) -> dict:
        self.proc, sock = await spawn_guest(python)
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        self.peer = Peer(reader, writer, on_message=self.messages.put_nowait)
        self.reading = asyncio.get_running_loop().create_task(self.peer.run())
        return await self.next("hello")

    async def next(self, kind: str, timeout: float = 10) -> dict:
        msg = await asyncio.wait_for(self.messages.get(), timeout)
        if msg["k"] != kind:
            raise AssertionError(f"expected {kind!r}, got {msg!r}")
        return msg

    async def load(self, package: str, extension_class=None) -> dict:
        self.peer.send(
            {"k": "init", "v": 1, "name": package, "modulePath": fixture(package), "extensionClass": extension_class}
        )
        msg = await asyncio.wait_for(self.messages.get(), 10)
        return msg

    async def exit_status(self, timeout: float = 10) -> int:
        return await asyncio.wait_for(self.proc.wait(), timeout)

    async def stderr(self) -> str:
        return (await self.proc.stderr.read()).decode(errors="replace")

    async def close(self) -> None:
        if self.peer is not None:
            self.peer.close()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self.reading is not None:
            self.reading.cancel()
