"""The lone plain call (peer.py `_lone_plain_call`): a chunk that is one small plain call is answered in a few steps,
with the same bytes the general path writes, and anything else is left to the general path untouched."""

from __future__ import annotations

import asyncio
import collections
import json
import random
import struct
import unittest

from pyisolate._guest.framing import FrameDecoder, ProtocolError
from pyisolate._guest.lone_call import MAX_KEPT, LoneCallReader
from pyisolate._guest.messages import check_message

from .peers import RawHostCase, recv_now


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

    async def test_a_reply_waits_behind_what_the_outbox_holds(self):
        # A lone call that arrives while earlier writes are held (corked) is still answered here, but its reply joins
        # them and leaves after them, as the general path's would, never straight to the transport ahead of them.
        out = self.peer._out
        out.cork()
        out.write([_compact({"k": "event", "name": "first", "payload": None})])
        self.taken.clear()
        self.assertEqual(await self.deliver(_compact(_call(14, "same", [5]))), b"")
        self.assertEqual(self.taken, [True])
        out.uncork()
        frames = [header for header, _ in FrameDecoder().feed(recv_now(self.host))]
        self.assertEqual([(f["k"], f.get("id")) for f in frames], [("event", None), ("result", 14)])
        self.assertEqual(frames[1]["value"], 5)

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


class LoneCallReaderAgreesWithTheGeneralPath(unittest.TestCase):
    """A property over canonical and mutated call frames: whatever the reader accepts, the general path (the frame
    decoder and check_message) reads as a plain call with the same id, target, method and args; and canonical frames
    are accepted, so the fast path is the one taken."""

    TARGETS = ("extension", "svc", "ünï", 'q"uote', "a,b", '"args":')
    METHODS = ("ping", "same", "_private", "m\\n", "args")
    ARGS = ([], [1], [1, "a", None, True], [[1, 2], {"x": [3]}], ["}"], [1.5, -2], ['"args":[1]'])
    SNIPPETS = (b',"id":5', b',"id":1', b',"k":"calls"', b',"args":[9]', b',"kw":{}', b',"x":1', b',"f":0', b" ", b"}")
    BYTES = b'",:{}[]01-9 \\kidtrue\xff'

    def _general(self, data: bytes):
        try:
            frames = FrameDecoder().feed(data)
            if len(frames) != 1 or frames[0][1]:
                return "other"
            msg = frames[0][0]
            if check_message(msg) != "call" or set(msg) != {"k", "id", "target", "method", "args"}:
                return "other"
        except ProtocolError:
            return "refused"
        return msg["id"], msg["target"], msg["method"], msg["args"]

    def _mutate(self, rng: random.Random, header: bytes) -> bytes:
        at = rng.randrange(len(header) + 1)
        choice = rng.randrange(4)
        if choice == 0:
            return header[:at] + rng.choice(self.SNIPPETS) + header[at:]
        if choice == 1 and at < len(header):
            return header[:at] + bytes([rng.choice(self.BYTES)]) + header[at + 1 :]
        if choice == 2:
            return header[:at] + header[at + 1 :]
        return header[:at] + bytes([rng.choice(self.BYTES)]) + header[at:]

    def test_what_the_reader_accepts_the_general_path_reads_alike(self):
        rng = random.Random(1306)
        reader = LoneCallReader()  # shared: the kept KEYS texts are part of what is checked
        verdicts = collections.Counter()
        for case in range(20000):
            call = _call(
                rng.choice((1, 7, 2**53 - 1, rng.randrange(1, 10**6))),
                rng.choice(self.METHODS),
                rng.choice(self.ARGS),
            )
            call["target"] = rng.choice(self.TARGETS)
            header = json.dumps(call, separators=(",", ":"), ensure_ascii=False).encode()
            mutated = case % 5 != 0
            if mutated:
                for _ in range(rng.randrange(1, 3)):
                    header = self._mutate(rng, header)
            data = struct.pack(">II", 4 + len(header), len(header)) + header
            if mutated and rng.randrange(10) == 0:
                data = data[: rng.randrange(len(data))]  # a chunk that ends inside the frame
            read = reader.read(data)
            if not mutated:
                self.assertIsNotNone(read, data)
            if read is not None:
                self.assertEqual(self._general(data), read, data)
                self.assertIs(type(read[3]), list)
            verdicts[(mutated, read is not None)] += 1
        self.assertGreater(verdicts[(True, True)], 100, verdicts)  # mutations the reader still takes (an id, args)
        self.assertGreater(verdicts[(True, False)], 1000, verdicts)

    def test_ids_and_keys_it_leaves_alone(self):
        reader = LoneCallReader()
        keys = b',"target":"extension","method":"ping","args":'
        for head in (
            b'{"k":"call","id":0',
            b'{"k":"call","id":01',
            b'{"k":"call","id":-1',
            b'{"k":"call","id":1e3',
            b'{"k":"call","id":' + b"9" * 17,
            b'{"k":"call","id":1,"id":2',
        ):
            with self.subTest(head=head):
                header = head + keys + b"[1]}"
                self.assertIsNone(reader.read(struct.pack(">II", 4 + len(header), len(header)) + header))

    def test_frames_it_leaves_alone(self):
        reader = LoneCallReader()
        early = b'{"k":"call","id":1,"target":"e","method":"m","args" :[]},"args":[1]}'  # the object closes early
        split = b'{"k":"call","id":1,"target":"e","method":"m","args":[1'  # its end in an "attachment"
        for data in (
            struct.pack(">II", 4 + len(early), len(early)) + early,
            struct.pack(">II", 4 + len(split) + 2, len(split)) + split + b"]}",
        ):
            with self.subTest(data=data):
                self.assertIsNone(reader.read(data))
                self.assertNotIsInstance(self._general(data), tuple)

    def test_the_kept_keys_are_bounded(self):
        reader = LoneCallReader()
        for i in range(3 * MAX_KEPT):
            header = json.dumps(_call(1, f"m{i}", []), separators=(",", ":")).encode()
            self.assertEqual(reader.read(struct.pack(">II", 4 + len(header), len(header)) + header)[2], f"m{i}")
        self.assertLessEqual(len(reader._kept), MAX_KEPT)
