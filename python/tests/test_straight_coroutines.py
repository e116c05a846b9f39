"""Async methods that cannot wait run without a task (straight.py), and keep what a task gave them."""

from __future__ import annotations

import asyncio
import contextvars
import unittest

from pyisolate._guest.straight import NOT_STRAIGHT, StraightCoroutines, never_suspends

from .peers import PeerPair

_seen = contextvars.ContextVar("seen", default=None)


async def _returns(x):
    return x * 2


async def _awaits(x):
    await asyncio.sleep(0)
    return x


async def _async_with(lock):
    async with lock:
        return 1


async def _async_for(items):
    return [x async for x in items]


async def _async_for_loop(items):
    total = 0
    async for x in items:
        total += x
    return total


async def _names_its_task():
    return asyncio.current_task() is not None


class _Ext:
    async def mark(self, value):
        before = _seen.get()
        _seen.set(value)  # in a copy of the context, as a task would have: the next call must not see it
        return before

    async def boom(self):
        raise LookupError("nothing here")

    async def mine(self):
        return asyncio.current_task() is not None

    async def waits(self, x):
        await asyncio.sleep(0)
        return x + 1


class VerdictTest(unittest.TestCase):
    def test_a_coroutine_with_no_suspension_point_never_suspends(self):
        self.assertTrue(never_suspends(_returns.__code__))

    def test_await_async_with_and_async_for_are_suspension_points(self):
        for fn in (_awaits, _async_with, _async_for, _async_for_loop):
            with self.subTest(fn.__name__):
                self.assertFalse(never_suspends(fn.__code__))

    def test_a_coroutine_that_asks_for_its_task_keeps_one(self):
        self.assertFalse(never_suspends(_names_its_task.__code__))


class StraightCallsTest(unittest.IsolatedAsyncioTestCase):
    async def test_a_context_variable_set_by_one_call_is_not_seen_by_the_next(self):
        async with PeerPair() as pair:
            pair.guest.register("extension", _Ext())
            self.assertIsNone(await pair.host.call("extension", "mark", ["first"]))
            self.assertIsNone(await pair.host.call("extension", "mark", ["second"]))

    async def test_an_exception_from_a_method_that_cannot_wait_reaches_the_caller_typed(self):
        async with PeerPair() as pair:
            pair.guest.register("extension", _Ext())
            with self.assertRaises(Exception) as caught:
                await pair.host.call("extension", "boom", [])
            self.assertEqual(type(caught.exception).__name__, "LookupError")
            self.assertIn("nothing here", str(caught.exception))

    async def test_a_method_that_names_current_task_runs_in_a_task(self):
        async with PeerPair() as pair:
            pair.guest.register("extension", _Ext())
            self.assertTrue(await pair.host.call("extension", "mine", []))

    async def test_a_method_that_waits_still_runs_as_a_task(self):
        async with PeerPair() as pair:
            pair.guest.register("extension", _Ext())
            self.assertEqual(
                await asyncio.gather(*(pair.host.call("extension", "waits", [i]) for i in range(50))),
                [i + 1 for i in range(50)],
            )


class MisjudgedTest(unittest.IsolatedAsyncioTestCase):
    async def test_a_coroutine_judged_straight_that_suspends_fails_once_then_gets_a_task(self):
        straight = StraightCoroutines()
        straight._verdicts[_awaits.__code__] = True  # a wrong verdict, as a bytecode the list misses would give
        coro = _awaits(1)
        with self.assertRaisesRegex(RuntimeError, "suspended although its code has no suspension point"):
            straight.run(coro)
        self.assertIsNone(coro.cr_frame, "the suspended coroutine was closed")
        later = _awaits(2)
        self.assertIs(straight.run(later), NOT_STRAIGHT)
        later.close()


class BytecodeTest(unittest.TestCase):
    def test_the_verdict_is_computed_from_this_pythons_own_opcodes(self):
        async def nested():
            async def inner():
                await asyncio.sleep(0)

            return inner  # defines a waiting coroutine, but does not wait itself

        self.assertTrue(never_suspends(nested.__code__))


if __name__ == "__main__":
    unittest.main()
