"""Calls are dispatched inside the read callback and their tasks start eagerly (link.py, eager.py), on every Python."""

from __future__ import annotations

import asyncio
import json
import struct
import sys
import unittest

from .peers import RawHostCase, frame_bytes, recv_now


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


def _call(cid: int, method: str, args: list) -> bytes:
    return frame_bytes({"k": "call", "id": cid, "target": "extension", "method": method, "args": args})


def _replies(data: bytes) -> list:
    out, pos = [], 0
    while len(data) - pos >= 8:
        total, hlen = struct.unpack_from(">II", data, pos)
        out.append(json.loads(data[pos + 8 : pos + 8 + hlen]))
        pos += 4 + total
    return out


class EagerDispatchTest(RawHostCase):
    def make_extension(self):
        return _Ext()

    async def _deliver_from_callback(self, data: bytes) -> bytes:
        return await self.deliver(data)

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
        self.host.send(frame_bytes({"k": "cancel", "id": 7}))
        for _ in range(100):
            if 7 not in self.peer._serving:
                break
            await asyncio.sleep(0.01)
        self.assertNotIn(7, self.peer._serving)
        self.assertEqual(recv_now(self.host), b"")  # a cancelled caller is owed no reply

    async def test_calls_delivered_while_a_task_is_current_are_answered_on_the_next_pass(self):
        self.peer._on_data(_call(3, "echo", ["x"]))  # from this test's task: no eager start on Python < 3.12
        self.assertEqual(await self._reply(), {"k": "result", "id": 3, "value": "x"})

    async def _reply(self) -> dict:
        for _ in range(200):
            data = recv_now(self.host)
            if data:
                return _replies(data)[0]
            await asyncio.sleep(0.005)
        self.fail("no reply arrived")


if __name__ == "__main__":
    unittest.main()
