"""Children never outlive the host: the guest dies with its parent even if the socket stays open."""

import asyncio
import os
import signal
import socket
import sys
import time
import unittest

from .harness import BOOTSTRAP, FIXTURES

# A stand-in host: starts the guest with our socket on fd 3, reports its pid, then waits to be killed.
_MIDDLE = """
import os, subprocess, sys
proc = subprocess.Popen([sys.executable, "-I", "-u", sys.argv[1]], cwd=sys.argv[2], close_fds=False,
                        preexec_fn=lambda: os.dup2(int(sys.argv[3]), 3),
                        stdout=subprocess.DEVNULL)  # our stdout pipe must close when we die
print(proc.pid, flush=True)
proc.wait()
"""


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return any(line.startswith("State:") and "Z" in line.split()[1] for line in f)
    except FileNotFoundError:
        return True


@unittest.skipUnless(sys.platform.startswith("linux"), "PR_SET_PDEATHSIG is Linux-only")
class ParentDeathTest(unittest.IsolatedAsyncioTestCase):
    async def test_guest_dies_with_its_parent(self):
        guest_pid = None
        ours, theirs = socket.socketpair()
        os.set_inheritable(theirs.fileno(), True)
        middle = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _MIDDLE,
            BOOTSTRAP,
            FIXTURES,
            str(theirs.fileno()),
            stdout=asyncio.subprocess.PIPE,
            close_fds=False,
        )
        try:
            guest_pid = int(await asyncio.wait_for(middle.stdout.readline(), 10))
            reader, writer = await asyncio.open_unix_connection(sock=ours)
            await asyncio.wait_for(reader.readexactly(8), 10)  # the hello: the guest is up
            # The socket's other end stays open in this process, so only PDEATHSIG can end the guest.
            middle.send_signal(signal.SIGKILL)
            await middle.wait()
            deadline = time.monotonic() + 5
            while not _gone(guest_pid) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            self.assertTrue(_gone(guest_pid), "the guest outlived its parent")
            writer.close()
        finally:
            theirs.close()
            if middle.returncode is None:
                middle.kill()
                await middle.wait()
            if guest_pid is not None and not _gone(guest_pid):
                os.kill(guest_pid, signal.SIGKILL)


if __name__ == "__main__":
    unittest.main()
