"""Batch, calls and results frames (docs/protocol.md#batches): calls that arrive together, and the plain replies of
one read leaving in one frame."""

from __future__ import annotations

import asyncio
import unittest
from unittest import mock

from pyisolate._guest.codec import dumps
from pyisolate._guest.framing import FrameDecoder, encode_frame

from .peers import RawHostCase, frame_bytes


class _Ext:
    async def echo(self, x):
        return x

    def add(self, a, b):
        return a + b

    async def fail(self):
        raise KeyError("missing")


def _call(cid: int, method: str, args: list) -> dict:
    return {"k": "call", "id": cid, "target": "extension", "method": method, "args": args}


_frame = frame_bytes


class BatchFramesTest(RawHostCase):
    def make_extension(self):
        return _Ext()

    async def asyncSetUp(self):
        await super().asyncSetUp()
        # A read's replies leave early once held 1 ms (outbox.HOLD_REPLIES_S): on a loaded machine a hundred calls
        # can take that long. These tests are about how one read's replies are framed, so the hold never ends here.
        holding = mock.patch("pyisolate._guest.outbox.HOLD_REPLIES_S", 60.0)
        holding.start()
        self.addCleanup(holding.stop)

    async def _exchange(self, data: bytes) -> list:
        """Delivers `data` as one read (from a loop callback, as the transport does); the headers written back."""
        return [header for header, _ in FrameDecoder().feed(await self._exchange_raw(data))]

    async def _exchange_raw(self, data: bytes) -> bytes:
        return await self.deliver(data, passes=3)  # tasks that did not start eagerly reply on the next passes

    @staticmethod
    def _unbatched(headers: list) -> list:
        """The replies one by one, whatever frames carried them."""
        out = []
        for header in headers:
            if header["k"] == "results":
                out.extend({"k": "result", "id": i, "value": v} for i, v in zip(header["ids"], header["values"]))
            else:
                out.append(header)
        return out

    async def test_the_calls_of_a_batch_frame_are_all_answered_in_order(self):
        self.peer.enable_batches(True)
        calls = [_call(i, "echo", [i]) if i % 2 else _call(i, "add", [i, 10]) for i in range(1, 101)]
        headers = await self._exchange(_frame({"k": "batch", "m": calls}))
        replies = self._unbatched(headers)
        self.assertEqual([r["id"] for r in replies], list(range(1, 101)))
        self.assertEqual([r["value"] for r in replies], [i if i % 2 else i + 10 for i in range(1, 101)])
        self.assertEqual([h["k"] for h in headers], ["results"], "the replies of one read leave in one frame")

    async def test_a_run_of_calls_is_answered_call_by_call_in_order(self):
        self.peer.enable_batches(True)
        run = {"k": "calls", "target": "extension", "method": "add", "ids": [5, 6, 7], "args": [[1, 2], [3, 4], [5]]}
        headers = await self._exchange(_frame(run))
        replies = self._unbatched(headers)
        self.assertEqual([r["id"] for r in replies], [5, 6, 7])
        self.assertEqual([r.get("value") for r in replies[:2]], [3, 7])
        self.assertEqual(replies[2]["k"], "error", "a call of the run that fails fails alone")
        self.assertEqual(replies[2]["error"]["type"], "TypeError")

    async def test_a_run_of_calls_to_a_method_the_extension_lacks_fails_each_call(self):
        run = {"k": "calls", "target": "extension", "method": "_hidden", "ids": [1, 2], "args": [[], []]}
        headers = await self._exchange(_frame(run))
        self.assertEqual(
            [(h["k"], h["id"], h["error"]["type"]) for h in headers],
            [("error", 1, "AttributeError"), ("error", 2, "AttributeError")],
        )

    async def test_a_read_with_more_replies_than_a_run_holds_leaves_in_several_runs(self):
        self.peer.enable_batches(True)
        count = 4096 + 10
        run = {
            "k": "calls",
            "target": "extension",
            "method": "add",
            "ids": list(range(1, 4097)),
            "args": [[i, 0] for i in range(1, 4097)],
        }
        tail = {
            "k": "calls",
            "target": "extension",
            "method": "add",
            "ids": list(range(4097, count + 1)),
            "args": [[i, 0] for i in range(4097, count + 1)],
        }
        headers = await self._exchange(_frame(run) + _frame(tail))  # the hold never ends here: the cap splits them
        self.assertEqual([len(h["ids"]) for h in headers], [4096, 10])
        self.assertEqual([r["value"] for r in self._unbatched(headers)], list(range(1, count + 1)))

    async def test_without_the_hosts_consent_every_reply_is_a_frame_of_its_own(self):
        headers = await self._exchange(b"".join(_frame(_call(i, "echo", [i])) for i in range(1, 6)))
        self.assertEqual([h["k"] for h in headers], ["result"] * 5)

    async def test_a_run_of_replies_holds_byte_for_byte_the_values_single_frames_hold(self):
        self.peer.enable_batches(True)
        values = ['quote " backslash \\ newline \n control \x01', "", 0, -7, 2**53 - 1, True, False, None]
        calls = [_call(i + 1, "echo", [v]) for i, v in enumerate(values)]
        raw = await self._exchange_raw(b"".join(_frame(c) for c in calls))
        ids = list(range(1, len(values) + 1))
        self.assertEqual(raw, b"".join(encode_frame(dumps({"k": "results", "ids": ids, "values": values}))))
        self.peer.enable_batches(False)
        raw = await self._exchange_raw(b"".join(_frame(c) for c in calls))
        singles = [dumps({"k": "result", "id": i + 1, "value": v}) for i, v in enumerate(values)]
        self.assertEqual(raw, b"".join(b"".join(encode_frame(single)) for single in singles))

    async def test_replies_that_cannot_be_batched_keep_their_place_in_the_order(self):
        self.peer.enable_batches(True)
        # A non-ASCII str, an object, an error and a float go in frames of their own, between batches of two.
        args = [1, 2, "héllo", 3, 4, {"a": [1]}, 5, 6, None, 7, 8, 1.5, 9, 10]
        calls = [_call(i + 1, "fail", []) if a is None else _call(i + 1, "echo", [a]) for i, a in enumerate(args)]
        headers = await self._exchange(b"".join(_frame(c) for c in calls))
        self.assertEqual(
            [h["k"] for h in headers],
            ["results", "result", "results", "result", "results", "error", "results", "result", "results"],
        )
        replies = self._unbatched(headers)
        self.assertEqual([r["id"] for r in replies], list(range(1, 15)))
        self.assertEqual(replies[8]["error"]["type"], "KeyError")
        self.assertEqual(replies[2]["value"], "héllo")

    async def test_a_run_past_the_hosts_header_limit_leaves_as_single_frames(self):
        self.peer.enable_batches(True)
        self.peer.apply_limits({"maxHeaderBytes": 200})
        headers = await self._exchange(b"".join(_frame(_call(i, "echo", ["x" * 40])) for i in range(1, 11)))
        self.assertEqual([h["k"] for h in headers], ["result"] * 10)
        self.assertTrue(all(len(dumps(h)) <= 200 for h in headers))

    async def test_a_malformed_message_in_a_batch_ends_the_connection_before_any_of_it_runs(self):
        self.peer.enable_batches(True)
        batch = {"k": "batch", "m": [_call(1, "echo", [1]), {"k": "event", "name": "x", "payload": 1}]}
        headers = await self._exchange(_frame(batch))
        self.assertEqual(headers, [], "the valid call before the bad one was not run")
        with self.assertRaisesRegex(Exception, "'event' messages cannot be batched"):
            await asyncio.wait_for(self.reading, 5)


class EncodeFrameTest(unittest.TestCase):
    def test_a_batch_frame_is_an_ordinary_frame(self):
        header = b'{"k":"batch","m":[{"k":"result","id":1,"value":1}]}'
        [(msg, attachments)] = FrameDecoder().feed(b"".join(encode_frame(header)))
        self.assertEqual(msg["m"], [{"k": "result", "id": 1, "value": 1}])
        self.assertEqual(attachments, [])


if __name__ == "__main__":
    unittest.main()
