"""Two Python peers over a real socketpair: calls, nesting, concurrency, callables, errors, cancel."""

import asyncio
import gc
import threading
import unittest

from pyisolate import ProxiedSingleton, RemoteError, local_execution
from pyisolate._guest.context import set_peer
from pyisolate._guest.framing import ProtocolError

from .peers import PeerPair


class CustomError(Exception):
    pass


class Service:
    """A target with every kind of attribute the resolver must tell apart."""

    limit = 3

    def __init__(self):
        self.cancelled = asyncio.Event()
        self.started = asyncio.Event()

    def add(self, a, b):
        return a + b

    async def mul(self, a, b):
        await asyncio.sleep(0)
        return a * b

    async def raise_value_error(self):
        raise ValueError("bad input")

    async def raise_key_error(self):
        raise KeyError("missing")

    async def raise_custom(self):
        raise CustomError("custom")

    async def forever(self):
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise

    async def apply(self, fn, value):
        return await fn(value)

    def make_adder(self, n):
        return lambda x: x + n

    def give_set(self):
        return {1}

    def _secret(self):
        return "secret"


class Counter(ProxiedSingleton):
    async def add(self, n): ...

    def plain(self, n): ...

    @local_execution
    def describe(self):
        return f"local {type(self).__name__}"


class Renamed(ProxiedSingleton):
    @classmethod
    def get_remote_id(cls):
        return "counter-service"

    async def add(self, n): ...


class CounterService:
    def __init__(self):
        self.total = 0

    def add(self, n):
        self.total += n
        return self.total

    def plain(self, n):
        return n * 2


class PeerTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.pair = await PeerPair().__aenter__()
        self.host, self.guest = self.pair.host, self.pair.guest
        self.host_service, self.guest_service = Service(), Service()
        self.host.register("svc", self.host_service)
        self.guest.register("extension", self.guest_service, hidden={"add"})

    async def asyncTearDown(self):
        await self.pair.__aexit__(None, None, None)
        set_peer(None)

    async def test_calls_both_ways_sync_and_async(self):
        self.assertEqual(await self.host.call("extension", "mul", [6, 7]), 42)
        self.assertEqual(await self.guest.call("svc", "add", ["a", "b"]), "ab")
        self.assertEqual(await self.guest.call("svc", "mul", (2, 3)), 6)

    async def test_nested_calls_depth_20(self):
        class Nest:
            """Each side's `down(n)` calls the other side's `down(n - 1)`."""

            def __init__(self, peer):
                self.peer = peer

            async def down(self, n):
                if n == 0:
                    return ["bottom"]
                return [n] + await self.peer.call("nest", "down", [n - 1])

        self.host.register("nest", Nest(self.host))
        self.guest.register("nest", Nest(self.guest))
        expected = list(range(20, 0, -1)) + ["bottom"]
        self.assertEqual(await self.host.call("nest", "down", [20]), expected)
        # The same through a callable the host passed: guest -> host fn -> guest -> ...
        self.assertEqual(await self.host.call("extension", "apply", [Nest(self.host).down, 20]), expected)

    async def test_300_concurrent_calls_are_in_flight_together(self):
        arrived, all_in = [0], asyncio.Event()

        class Gate:
            async def wait(self, i):
                arrived[0] += 1
                if arrived[0] == 300:
                    all_in.set()
                await all_in.wait()  # returns only once all 300 are running at once
                return i

        self.guest.register("gate", Gate())
        results = await asyncio.wait_for(asyncio.gather(*(self.host.call("gate", "wait", [i]) for i in range(300))), 10)
        self.assertEqual(results, list(range(300)))

    async def test_callables_both_ways_and_release_after_gc(self):
        self.assertEqual(await self.host.call("extension", "apply", [lambda x: x * 10, 4]), 40)
        await self._round_trip()
        self.assertEqual(self.host.exported_count, 0)  # the guest's proxy died and was released

        adder = await self.host.call("extension", "make_adder", [5])
        self.assertEqual(await adder(1), 6)
        self.assertEqual(self.guest.exported_count, 1)
        del adder
        await self._round_trip()
        self.assertEqual(self.guest.exported_count, 0)

    async def _round_trip(self):
        gc.collect()
        await asyncio.sleep(0)  # let the batched release go out before the next frame
        await self.host.call("extension", "mul", [1, 1])
        await self.guest.call("svc", "add", [1, 1])

    async def test_error_mapping(self):
        with self.assertRaises(ValueError) as cm:
            await self.host.call("extension", "raise_value_error", [])
        self.assertEqual(str(cm.exception), "bad input")
        self.assertEqual(cm.exception.remote_type, "ValueError")
        self.assertIn("raise ValueError", cm.exception.remote_traceback)

        with self.assertRaises(KeyError):
            await self.host.call("extension", "raise_key_error", [])

        with self.assertRaises(RemoteError) as cm:
            await self.host.call("extension", "raise_custom", [])
        self.assertEqual(cm.exception.remote_type, "CustomError")
        self.assertEqual(cm.exception.remote_module, __name__)
        self.assertEqual(str(cm.exception), "CustomError: custom")

    async def test_unencodable_values(self):
        with self.assertRaisesRegex(TypeError, "cannot send value of type 'set'"):
            await self.host.call("extension", "add", [{1}])
        with self.assertRaisesRegex(TypeError, "cannot send value of type 'set'"):
            await self.host.call("extension", "give_set", [])

    async def test_cancel_reaches_the_callee(self):
        call = asyncio.ensure_future(self.host.call("extension", "forever", []))
        await asyncio.wait_for(self.guest_service.started.wait(), 5)
        call.cancel()
        await asyncio.wait_for(self.guest_service.cancelled.wait(), 5)
        with self.assertRaises(asyncio.CancelledError):
            await call
        self.assertEqual(self.host.pending_count, 0)
        self.assertEqual(await self.host.call("extension", "mul", [2, 2]), 4)  # still healthy

    async def test_timeout_cancels_the_other_direction_too(self):
        with self.assertRaises(asyncio.TimeoutError):
            await asyncio.wait_for(self.guest.call("svc", "forever", []), 0.05)
        await asyncio.wait_for(self.host_service.cancelled.wait(), 5)

    async def test_refusals(self):
        cases = [
            ("extension", "_secret", AttributeError),
            ("extension", "nope", AttributeError),
            ("extension", "limit", AttributeError),
            ("extension", "add", AttributeError),
            ("extension", "__init__", AttributeError),
            ("ghost", "add", LookupError),
        ]
        for target, method, error in cases:
            with self.assertRaises(error, msg=method):
                await self.host.call(target, method, [1, 2])
        with self.assertRaises(LookupError):
            await self.host.call_fn(999, [])

    async def test_close_settles_pending_calls(self):
        call = asyncio.ensure_future(self.host.call("extension", "forever", []))
        await asyncio.wait_for(self.guest_service.started.wait(), 5)
        self.guest.close()
        with self.assertRaises(ConnectionError):
            await asyncio.wait_for(call, 5)
        with self.assertRaises(ConnectionError):
            await self.guest.call("svc", "add", [1, 2])

    async def test_events_from_the_loop_and_from_threads(self):
        self.guest.emit("one", {"data": b"\x01\x02", "n": 2**64})
        thread = threading.Thread(target=self.guest.emit, args=("two", None))
        thread.start()
        thread.join()
        first = await asyncio.wait_for(self.pair.host_messages.get(), 5)
        second = await asyncio.wait_for(self.pair.host_messages.get(), 5)
        self.assertEqual(first["payload"], {"data": b"\x01\x02", "n": 2**64})
        self.assertEqual((second["name"], second["payload"]), ("two", None))
        with self.assertRaises(TypeError):
            self.guest.emit("bad", {1, 2})

    async def test_calls_from_another_threads_loop(self):
        result = await asyncio.get_running_loop().run_in_executor(
            None, lambda: asyncio.run(self.guest.call("svc", "mul", [3, 5]))
        )
        self.assertEqual(result, 15)

    async def test_proxied_singleton_stubs(self):
        counter_service = CounterService()
        self.host.register("Counter", counter_service)
        self.host.register("counter-service", counter_service)
        set_peer(self.guest)
        self.assertIs(Counter(), Counter())
        self.assertEqual(await Counter().add(5), 5)
        self.assertEqual(await Counter().plain(4), 8)  # a plain `def` becomes an awaitable call
        self.assertEqual(Counter().describe(), "local Counter")
        self.assertEqual(await Renamed().add(1), 6)
        self.assertEqual(await Counter().add(n=2), 8)  # keyword arguments reach the service
        self.assertEqual(Counter.add.__name__, "add")

    async def test_protocol_error_ends_the_reader(self):
        self.host._transport.write(b"\x00\x00\x00\x06\x00\x00\x00\x02[]")
        with self.assertRaisesRegex(ProtocolError, "not a JSON object"):
            await asyncio.wait_for(self.pair.tasks[1], 5)
        self.assertTrue(self.guest.closed)


if __name__ == "__main__":
    unittest.main()
