"""Streams between two real peers on a socketpair: the producer holds to its credit, cancel closes the generator,
and a reader refuses items it gave no credit for (the guest's own checks of the host)."""

import asyncio
import unittest

from pyisolate._guest import protocol as P
from pyisolate._guest.framing import ProtocolError
from pyisolate._guest.streams import HostStream

from .peers import PeerPair


class Generators:
    def __init__(self):
        self.produced = 0
        self.closed = None

    def endless(self):
        try:
            while True:
                self.produced += 1
                yield self.produced
        except GeneratorExit:
            self.closed = "GeneratorExit"
            raise

    async def words(self, text):
        for word in text.split():
            yield word


def _read(pair, method, args, window):
    """A stream call from the `host` peer, read through a HostStream wired to it by hand (as _open_stream does)."""
    host = pair.host
    stream = HostStream(host, 1)
    stream._unused.detach()
    stream.window = window
    stream._granted = window
    cid = stream._cid = next(host._call_ids)
    host._consuming[cid] = stream
    host._out.send({"k": P.CALL, "id": cid, "target": "extension", "method": method, "stream": window}, "args", args)
    return stream


async def _settle():
    for _ in range(20):
        await asyncio.sleep(0)


class StreamPeerTest(unittest.IsolatedAsyncioTestCase):
    async def test_items_arrive_in_order_and_the_stream_ends(self):
        async with PeerPair() as pair:
            pair.guest.register("extension", Generators())
            self.assertEqual([w async for w in _read(pair, "words", ["a b c d e"], 2)], ["a", "b", "c", "d", "e"])

    async def test_the_generator_runs_no_further_than_its_credit_and_cancel_closes_it(self):
        async with PeerPair() as pair:
            gens = Generators()
            pair.guest.register("extension", gens)
            stream = _read(pair, "endless", [], 3)
            self.assertEqual(await stream.__anext__(), 1)
            await _settle()
            self.assertEqual(gens.produced, 1 + 3, "one read, and a window of three ahead of it")
            for expected in (2, 3, 4, 5):
                self.assertEqual(await stream.__anext__(), expected)
                await _settle()
                self.assertLessEqual(gens.produced - expected, 3)
            await stream.aclose()
            await _settle()
            self.assertEqual(gens.closed, "GeneratorExit")
            self.assertEqual(pair.host._consuming, {}, "the cancelled stream's end arrived and was forgotten")

    async def test_a_method_that_is_no_generator_ends_the_stream_with_type_error(self):
        async with PeerPair() as pair:
            pair.guest.register("extension", {"x": 1}.copy())  # a dict's `keys` returns a view, not an iterator
            with self.assertRaisesRegex(TypeError, "must return a generator or async generator, not dict_keys"):
                async for _ in _read(pair, "keys", [], 4):
                    pass

    async def test_items_past_the_credit_are_a_protocol_error(self):
        async with PeerPair() as pair:
            stream = _read(pair, "nothing", [], 2)
            for i in range(3):  # what a hostile sender does: ignore the window
                pair.guest._out.send({"k": P.ITEM, "id": stream._cid}, "value", i)
            with self.assertRaisesRegex(ProtocolError, "more items than the 2 granted"):
                await pair.tasks[0]

    async def test_an_item_for_no_open_stream_is_a_protocol_error(self):
        async with PeerPair() as pair:
            pair.guest._out.send({"k": P.ITEM, "id": 77}, "value", 1)
            with self.assertRaisesRegex(ProtocolError, "item 77: no stream call with this id is open"):
                await pair.tasks[0]

    async def test_credit_past_the_most_a_stream_may_hold_is_a_protocol_error(self):
        async with PeerPair() as pair:
            gens = Generators()
            pair.guest.register("extension", gens)
            stream = _read(pair, "endless", [], P.MAX_STREAM_WINDOW)
            await stream.__anext__()
            pair.host._out.send({"k": P.CREDIT, "id": stream._cid, "n": P.MAX_STREAM_WINDOW})
            with self.assertRaisesRegex(ProtocolError, "items outstanding exceeds 65536"):
                await pair.tasks[1]


if __name__ == "__main__":
    unittest.main()
