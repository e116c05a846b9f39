"""Keyword arguments on the wire: the `kw` field both ways, its encoding, and the malformed ones refused."""

import asyncio
import gc
import unittest

from pyisolate import ExtensionBase, ProxiedSingleton
from pyisolate._guest.codec import dumps
from pyisolate._guest.context import set_peer
from pyisolate._guest.framing import FrameDecoder, ProtocolError, encode_frame
from pyisolate._guest.outbox import Outbox

from .peers import CaptureTransport, PeerPair


class Target:
    def scale(self, x, factor=1, *, offset=0):
        return x * factor + offset

    async def seen(self, *args, **kwargs):
        return {"args": list(args), "kwargs": kwargs}

    async def call_with(self, fn, **kwargs):
        return await fn(**kwargs)


class Svc(ProxiedSingleton):
    async def seen(self, *args, **kwargs): ...


class OutboxTest(unittest.TestCase):
    def _frame(self, args, kw):
        out = Outbox(CaptureTransport(), 1 << 30)
        [(msg, attachments)] = FrameDecoder().feed(
            b"".join(bytes(c) for c in out.frame({"k": "call", "id": 1, "fn": 2}, "args", args, kw))
        )
        return msg, attachments

    def test_no_keywords_no_field(self):
        for kw in (None, {}):
            msg, _ = self._frame([1], kw)
            self.assertEqual(msg, {"k": "call", "id": 1, "fn": 2, "args": [1]})

    def test_kw_follows_args_and_shares_the_frames_attachments(self):
        msg, attachments = self._frame([b"ab"], {"data": b"xyz", "n": 2**64, "nested": {"l": [1, None]}})
        self.assertEqual(list(msg), ["k", "id", "fn", "args", "kw", "x", "a"])
        self.assertEqual(msg["args"], [{"$bytes": 0}])
        self.assertEqual(msg["kw"], {"data": {"$bytes": 1}, "n": {"$int": str(2**64)}, "nested": {"l": [1, None]}})
        self.assertEqual(attachments, [b"ab", b"xyz"])

    def test_names_must_be_identifiers(self):
        out = Outbox(CaptureTransport(), 1 << 30)
        for bad in ({"a-b": 1}, {1: 2}, {"": 0}, {"$x": 1}):
            with self.subTest(bad), self.assertRaisesRegex(TypeError, "not a Python identifier"):
                out.frame({"k": "call", "id": 1, "fn": 2}, "args", [], bad)


class KwargsPeerTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.pair = await PeerPair().__aenter__()
        self.host, self.guest = self.pair.host, self.pair.guest
        self.host.register("Svc", Target())
        self.guest.register("extension", Target())

    async def asyncTearDown(self):
        await self.pair.__aexit__(None, None, None)
        set_peer(None)

    async def test_calls_with_keywords_both_ways(self):
        self.assertEqual(await self.host.call("extension", "scale", [2], {"factor": 3, "offset": 1}), 7)
        self.assertEqual(await self.guest.call("Svc", "scale", [2], {"offset": 5}), 7)
        seen = await self.host.call("extension", "seen", [b"a"], {"data": b"bc", "deep": {"x": [2**70]}})
        self.assertEqual(seen, {"args": [b"a"], "kwargs": {"data": b"bc", "deep": {"x": [2**70]}}})

    async def test_an_unexpected_keyword_is_the_callees_type_error(self):
        with self.assertRaisesRegex(TypeError, "unexpected keyword argument 'nope'"):
            await self.host.call("extension", "scale", [1], {"nope": 1})

    async def test_callables_take_keywords_both_ways(self):
        def add(x, y=0):
            return x + y

        self.assertEqual(await self.host.call("extension", "call_with", [add], {"x": 1, "y": 2}), 3)
        remote = await self.host.call("extension", "call_with", [lambda: Target().seen])
        self.assertEqual(await remote(1, key="v"), {"args": [1], "kwargs": {"key": "v"}})
        del remote
        gc.collect()

    async def test_stubs_send_keywords(self):
        set_peer(self.guest)
        self.assertEqual(await Svc().seen(1, sid=None), {"args": [1], "kwargs": {"sid": None}})
        self.assertEqual(await Svc().seen(), {"args": [], "kwargs": {}})
        caller = ExtensionBase().create_caller(Target, "Svc")
        self.assertEqual(await caller.scale(3, factor=2), 6)

    async def test_bad_names_are_refused_before_sending(self):
        with self.assertRaisesRegex(TypeError, "not a Python identifier"):
            await self.guest.call("Svc", "seen", [], {"not-a-name": 1})
        self.assertEqual(self.guest.pending_count, 0)
        self.assertEqual(await self.guest.call("Svc", "scale", [1]), 1)  # still healthy


class MalformedKwTest(unittest.IsolatedAsyncioTestCase):
    async def test_malformed_kw_is_a_protocol_error(self):
        cases = [
            ([1], "must be an object"),
            (None, "must be an object"),
            ("x", "must be an object"),
            ({"a-b": 1}, "not a Python identifier"),
            ({"$bytes": 0}, "not a Python identifier"),
            ({"": 1}, "not a Python identifier"),
        ]
        for kw, message in cases:
            with self.subTest(kw=kw):
                async with PeerPair() as pair:
                    pair.guest.register("extension", Target())
                    header = dumps(
                        {"k": "call", "id": 1, "target": "extension", "method": "scale", "args": [1], "kw": kw}
                    )
                    pair.host._transport.write(b"".join(encode_frame(header)))
                    with self.assertRaisesRegex(ProtocolError, message):
                        await asyncio.wait_for(pair.tasks[1], 5)
                    self.assertTrue(pair.guest.closed)

    async def test_an_empty_kw_is_no_keywords(self):
        async with PeerPair() as pair:
            pair.guest.register("extension", Target())
            reply = asyncio.get_running_loop().create_future()
            pair.host._pending[99] = reply  # as if the host had made call 99 itself
            header = dumps({"k": "call", "id": 99, "target": "extension", "method": "seen", "args": [1], "kw": {}})
            pair.host._out.write(encode_frame(header))
            self.assertEqual(await asyncio.wait_for(reply, 5), {"args": [1], "kwargs": {}})


if __name__ == "__main__":
    unittest.main()
