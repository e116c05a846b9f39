"""Calls are dispatched inside the read callback and their tasks start eagerly (link.py, eager.py), on every Python."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import sys
import unittest

from pyisolate._guest.peer import Peer


class _Ext:
    def add(self, a, b):
        return a + b

    async def echo(self, x):
        return x

    async def whoami(self):
        task = asyncio.current_task()
        if sys.version_info >= (3, 11):
            async with asyncio.timeout(5):  # needs a current task: it binds to it
                await asyncio.sleep(0)
        else:
            await asyncio.wait_for(asyncio.sleep(0), 5)
        return [task is not None, task is asyncio.current_task()]

    async def slow(self):
        await asyncio.sleep(30)


def _frame(header: dict) -> bytes:
    data = json.dumps(header).encode()
    return struct.pack(">II", 4 + len(data), len(data)) + data


def _call(cid: int, method: str, args: list) -> bytes:
    return _frame({"k": "call", "id": cid, "target": "extension", "method": method, "args": args})


def _replies(data: bytes) -> list:
    out, pos = [], 0
    while len(data) - pos >= 8:
        total, hlen = struct.unpack_from(">II", data, pos)
        out.append(json.loads(data[pos + 8 : pos + 8 + hlen]))
        pos += 4 + total
    return out


def _recv_now(sock: socket.socket) -> bytes:
    data = b""
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except BlockingIOError:
            return data
        if not chunk:
            return data
        data += chunk


class EagerDispatchTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.loop = asyncio.get_running_loop()
        ours, self.host = socket.socketpair()
        self.host.setblocking(False)
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        self.peer = Peer(reader, writer)
        self.peer.register("extension", _Ext())
        self.reading = self.loop.create_task(self.peer.run())

    async def asyncTearDown(self):
        self.peer.close()
        await asyncio.gather(self.reading, return_exceptions=True)
        self.host.close()

    async def _deliver_from_callback(self, data: bytes) -> bytes:
        """Hand `data` to the peer as the transport would (a loop callback, no task current) and return what the
        peer had written to the socket by the time that callback returned."""
        written = self.loop.create_future()

        def deliver():
            self.peer._link.data_received(data)
            written.set_result(_recv_now(self.host))

        self.loop.call_soon(deliver)
        return await written

    async def test_a_burst_of_calls_that_do_not_wait_is_answered_inside_the_read_callback(self):
        burst = b"".join(_call(i, "echo" if i % 2 else "add", [i] if i % 2 else [i, 1]) for i in range(1, 201))
        replies = _replies(await self._deliver_from_callback(burst))
        self.assertEqual([r["id"] for r in replies], list(range(1, 201)))
        self.assertEqual([r["value"] for r in replies], [i if i % 2 else i + 1 for i in range(1, 201)])

    async def test_an_eagerly_started_method_runs_as_its_own_current_task(self):
        await self._deliver_from_callback(_call(1, "whoami", []))
        reply = await self._reply()
        self.assertEqual(reply, {"k": "result", "id": 1, "value": [True, True]})

    async def test_a_method_that_waits_is_answered_later_and_can_be_cancelled(self):
        self.assertEqual(await self._deliver_from_callback(_call(7, "slow", [])), b"")
        self.assertIn(7, self.peer._serving)  # started, waiting, cancellable
        self.host.send(_frame({"k": "cancel", "id": 7}))
        for _ in range(100):
            if 7 not in self.peer._serving:
                break
            await asyncio.sleep(0.01)
        self.assertNotIn(7, self.peer._serving)
        self.assertEqual(_recv_now(self.host), b"")  # a cancelled caller is owed no reply

    async def test_calls_delivered_while_a_task_is_current_are_answered_on_the_next_pass(self):
        self.peer._on_data(_call(3, "echo", ["x"]))  # from this test's task: no eager start on Python < 3.12
        self.assertEqual(await self._reply(), {"k": "result", "id": 3, "value": "x"})

    async def _reply(self) -> dict:
        for _ in range(200):
            data = _recv_now(self.host)
            if data:
                return _replies(data)[0]
            await asyncio.sleep(0.005)
        self.fail("no reply arrived")


if __name__ == "__main__":
    unittest.main()
