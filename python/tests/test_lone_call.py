"""The lone plain call (peer.py `_lone_plain_call`): a chunk that is one small plain call is answered in a few steps,
with the same bytes the general path writes, and anything else is left to the general path untouched."""

from __future__ import annotations

import asyncio
import json
import struct

from pyisolate._guest.framing import FrameDecoder

from .peers import RawHostCase


class _Ext:
    def same(self, x):
        return x

    async def later(self, x):
        await asyncio.sleep(0)
        return x + 1

    async def at_once(self, x):
        return x * 2

    def boom(self):
        raise KeyError("missing")


def _compact(header: dict) -> bytes:
    """One frame as the host writes it: compact JSON, keys in the host's order."""
    data = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack(">II", 4 + len(data), len(data)) + data


def _spaced(header: dict) -> bytes:
    """The same frame with spaces after the separators: JSON the general path reads alike, the lone path never."""
    data = json.dumps(header).encode()
    return struct.pack(">II", 4 + len(data), len(data)) + data


def _call(cid: int, method: str, args: list, **extra) -> dict:
    return {"k": "call", "id": cid, "target": "extension", "method": method, "args": args, **extra}


class LoneCallTest(RawHostCase):
    def make_extension(self):
        return _Ext()

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.taken = []
        lone = self.peer._lone_plain_call

        def counting(data):
            answered = lone(data)
            self.taken.append(answered)
            return answered

        self.peer._lone_plain_call = counting

    async def _both(self, call: dict, passes: int = 0) -> tuple:
        """(what the lone path wrote, what the general path wrote) for the same call, and whether the lone path took
        the first one."""
        self.taken.clear()
        lone = await self.deliver(_compact(call), passes)
        taken = self.taken[-1]
        general = await self.deliver(_spaced(call), passes)
        self.assertFalse(self.taken[-1], "the spaced frame must take the general path")
        return lone, general, taken

    async def test_replies_carry_the_bytes_the_general_path_writes(self):
        for value in (7, -(2**53) + 1, None, True, False, "ascii text", "ünïcode", 1.5, 2**60, [1, "a"], {"k": 1}, ""):
            with self.subTest(value=value):
                lone, general, taken = await self._both(_call(3, "same", [value]))
                self.assertTrue(taken)
                self.assertEqual(lone, general)
                [(header, _)] = FrameDecoder().feed(lone)
                self.assertEqual((header["k"], header["id"]), ("result", 3))  # 2**60 travels tagged, as $int

    async def test_an_async_method_without_a_wait_is_answered_at_once(self):
        lone, general, taken = await self._both(_call(4, "at_once", [21]))
        self.assertTrue(taken)
        self.assertEqual(lone, general)
        self.assertEqual(FrameDecoder().feed(lone)[0][0]["value"], 42)

    async def test_a_method_that_waits_is_answered_from_its_task(self):
        lone, general, taken = await self._both(_call(5, "later", [1]), passes=3)
        self.assertTrue(taken)
        self.assertEqual(lone, general)
        self.assertEqual(FrameDecoder().feed(lone)[0][0], {"k": "result", "id": 5, "value": 2})

    async def test_errors_are_the_general_paths_errors(self):
        for call in (_call(6, "boom", []), _call(7, "_private", []), _call(8, "same", [1, 2])):
            with self.subTest(method=call["method"]):
                lone, general, taken = await self._both(call)
                self.assertTrue(taken)
                [(header, _)] = FrameDecoder().feed(lone)
                [(expected, _)] = FrameDecoder().feed(general)
                self.assertEqual(header["k"], "error")
                self.assertEqual(header["error"]["type"], expected["error"]["type"])
                self.assertEqual(header["error"]["message"], expected["error"]["message"])

    async def test_anything_else_is_left_to_the_general_path(self):
        two = _compact(_call(9, "same", [1])) + _compact(_call(10, "same", [2]))
        cases = {
            "a tag": _compact(_call(11, "same", [1], x=1)),
            "keywords": _compact(_call(12, "same", [], kw={"x": 3})),
            "two frames in one chunk": two,
            "a run of calls": _compact(
                {"k": "calls", "target": "extension", "method": "same", "ids": [13], "args": [[1]]}
            ),
        }
        for name, data in cases.items():
            with self.subTest(name):
                self.taken.clear()
                replies = [header for header, _ in FrameDecoder().feed(await self.deliver(data))]
                self.assertEqual(self.taken, [False])
                self.assertTrue(replies and all(r["k"] == "result" for r in replies), replies)

    async def _refused(self, header: bytes) -> BaseException:
        """Delivers one frame of `header` text; asserts the lone path left it alone; what ended the connection."""
        self.taken.clear()
        await self.deliver(struct.pack(">II", 4 + len(header), len(header)) + header)
        self.assertEqual(self.taken, [False])
        with self.assertRaises(Exception) as caught:
            await asyncio.wait_for(self.peer.run(), 5)
        return caught.exception

    async def test_a_repeated_k_key_is_read_as_the_general_path_reads_it(self):
        # json keeps a repeated key's last value: this is a "calls" frame with a malformed run, not a call.
        error = await self._refused(b'{"k":"call","id":1,"target":"extension","method":"same","k":"calls"}')
        self.assertIn("calls", str(error))

    async def test_a_frame_that_is_not_json_still_ends_the_connection(self):
        error = await self._refused(b'{"k":"call","id":1,')
        self.assertIn("not valid JSON", str(error))
