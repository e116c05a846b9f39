"""Streams from a host service, read by the extension (service_stream.py) between two real peers on a socketpair: the
`host` peer serves a generator target, the `guest` peer reads it through a ServiceStream and a ProxiedSingleton stub."""

import asyncio
import gc
import itertools
import json
import os
import types
import unittest

from pyisolate import ProxiedSingleton, ServiceStream
from pyisolate._guest import context
from pyisolate._guest.outbox import Outbox
from pyisolate._guest.peer import Peer
from pyisolate._guest.singleton import RemoteObject, singleton_scope
from pyisolate._guest.streams import HostStream

from .peers import CaptureTransport, PeerPair

VECTORS = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "test", "vectors", "frames.json"))


class Chat:
    """What the host serves as the service "Chat": generators that record how far they ran and how they ended."""

    def __init__(self):
        self.produced = 0
        self.ended = None

    async def generate(self, prompt, n=None, *, upper=False):
        try:
            for i in range(10**9 if n is None else n):
                self.produced += 1
                await asyncio.sleep(0)
                yield f"{prompt.upper() if upper else prompt}-{i}"
        except GeneratorExit:
            self.ended = "GeneratorExit"
            raise
        except asyncio.CancelledError:
            self.ended = "CancelledError"
            raise

    async def slow(self):
        try:
            yield "first"
            await asyncio.sleep(3600)
            yield "never"
        except asyncio.CancelledError:
            self.ended = "CancelledError"
            raise

    def fail_after(self, n):
        yield from range(n)
        raise ValueError(f"failed after {n} items")


async def _settle():
    for _ in range(30):
        await asyncio.sleep(0)


async def _served(pair):
    chat = Chat()
    pair.host.register("Chat", chat)
    return chat


class ServiceStreamTest(unittest.IsolatedAsyncioTestCase):
    async def test_items_arrive_in_order_with_keyword_arguments(self):
        async with PeerPair() as pair:
            await _served(pair)
            stream = ServiceStream(pair.guest, "Chat", "generate", ("hi", 3), {"upper": True})
            self.assertEqual([x async for x in stream], ["HI-0", "HI-1", "HI-2"])
            self.assertEqual(pair.guest._consuming, {}, "the ended stream is forgotten")

    async def test_a_reader_that_stops_reading_bounds_the_host_generator_to_the_window(self):
        async with PeerPair() as pair:
            chat = await _served(pair)
            stream = ServiceStream(pair.guest, "Chat", "generate", ("w",), None)
            stream.window = 4
            self.assertEqual(await stream.__anext__(), "w-0")
            await _settle()
            self.assertEqual(chat.produced, 4, "one read, and no item past the window of four")
            for read in range(2, 30):
                await stream.__anext__()
                await _settle()
                self.assertLessEqual(chat.produced - read, 4)
            await stream.aclose()
            await _settle()
            self.assertEqual(chat.ended, "GeneratorExit")

    async def test_break_out_of_async_for_over_the_call_closes_the_host_generator(self):
        async with PeerPair() as pair:
            chat = await _served(pair)
            got = []
            async for token in ServiceStream(pair.guest, "Chat", "generate", ("b",), None):
                got.append(token)
                if len(got) == 2:
                    break
            gc.collect()  # CPython drops the iterator at once; the collection is for other interpreters
            await _settle()
            self.assertEqual(got, ["b-0", "b-1"])
            self.assertIn(chat.ended, ("GeneratorExit", "CancelledError"), "the host generator was closed")
            self.assertEqual(pair.guest._consuming, {}, "the cancelled stream's end arrived")

    async def test_cancelling_the_reading_task_cancels_the_host_generator(self):
        async with PeerPair() as pair:
            chat = await _served(pair)
            stream = ServiceStream(pair.guest, "Chat", "slow", (), None)
            first = asyncio.Event()

            async def read():
                async for _ in stream:
                    first.set()

            task = asyncio.ensure_future(read())
            await first.wait()
            await _settle()
            task.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await task
            await _settle()
            self.assertEqual(chat.ended, "CancelledError", "the host's await was cancelled")
            with self.assertRaises(StopAsyncIteration):
                await stream.__anext__()

    async def test_an_error_mid_stream_comes_after_its_items_as_the_same_type(self):
        async with PeerPair() as pair:
            await _served(pair)
            got = []
            with self.assertRaisesRegex(ValueError, "failed after 2 items"):
                async for x in ServiceStream(pair.guest, "Chat", "fail_after", (2,), None):
                    got.append(x)
            self.assertEqual(got, [0, 1])

    async def test_nothing_is_sent_before_the_first_read_and_a_stream_is_not_awaitable(self):
        async with PeerPair() as pair:
            chat = await _served(pair)
            stream = ServiceStream(pair.guest, "Chat", "generate", ("x",), None)
            await _settle()
            self.assertEqual((chat.produced, pair.guest._consuming), (0, {}))
            with self.assertRaisesRegex(TypeError, r"Chat.generate streams: read it with `async for`"):
                await stream
            with self.assertRaisesRegex(ValueError, "window must be an int from 1 to 65536"):
                stream.window = 0
            await stream.__anext__()
            with self.assertRaisesRegex(RuntimeError, "the window is set before the first read"):
                stream.window = 8
            await stream.aclose()

    async def test_a_singleton_method_written_as_a_generator_returns_a_stream_the_others_a_call(self):
        async with PeerPair() as pair:
            await _served(pair)

            class Chat(ProxiedSingleton):  # noqa: F811 - the extension's declaration of the host's service
                async def generate(self, prompt, n=None, *, upper=False):
                    yield prompt  # never runs here: the host's method does

                def fail_after(self, n):
                    yield n

                async def ping(self):
                    return "local"

            context.set_peer(pair.guest)
            pair.guest.services = frozenset({"Chat"})
            try:
                with singleton_scope():
                    chat = Chat()
                    self.assertIsInstance(chat.generate("s", 2), ServiceStream)
                    self.assertEqual([x async for x in chat.generate("s", 2, upper=True)], ["S-0", "S-1"])
                    with self.assertRaisesRegex(ValueError, "failed after 0 items"):  # a sync generator streams too
                        await chat.fail_after(0).__anext__()
                    with self.assertRaisesRegex(AttributeError, "has no method .ping."):
                        await chat.ping()  # a plain method is a call: the host's Chat has no ping
            finally:
                context.set_peer(None)

    async def test_a_remote_object_streams_the_methods_its_type_writes_as_generators(self):
        async with PeerPair() as pair:
            await _served(pair)

            class ChatType:
                async def generate(self, prompt, n=None):
                    yield prompt

            context.set_peer(pair.guest)
            try:
                chat = RemoteObject(ChatType, "Chat")
                self.assertEqual([x async for x in chat.generate("r", 2)], ["r-0", "r-1"])
            finally:
                context.set_peer(None)

    async def test_a_host_stream_closed_before_its_first_read_is_released_at_once(self):
        async with PeerPair() as pair:
            released = []
            pair.guest._proxies._send_release = released.extend
            stream = HostStream(pair.guest, 5)
            await stream.aclose()
            await _settle()
            self.assertEqual(released, [5], "the host may forget the iterable now, not when the stream is collected")
            del stream
            gc.collect()
            await _settle()
            self.assertEqual(released, [5], "and only once")


class ServiceStreamVectorTest(unittest.TestCase):
    def test_the_first_read_writes_the_shared_vector_bytes(self):
        with open(VECTORS, encoding="utf-8") as f:
            vector = next(v for v in json.load(f) if v["name"] == "call_service_stream")
        transport = CaptureTransport()
        peer = types.SimpleNamespace(
            _closed=None, _call_ids=itertools.count(17), _consuming={}, _out=Outbox(transport, 1 << 30)
        )
        stream = object()
        cid = Peer._open_service_stream(peer, stream, "Chat", "generate", ("hi", 3), {"upper": True}, 16)
        self.assertEqual((cid, peer._consuming), (17, {17: stream}))
        self.assertEqual(transport.data.hex(), vector["hex"])


if __name__ == "__main__":
    unittest.main()
