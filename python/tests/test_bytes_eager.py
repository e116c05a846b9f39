"""Starting a called coroutine at once (eager.py): returned values, raised errors, waits resumed, cancellation relayed."""

import asyncio
import unittest

from pyisolate._guest import eager


class EagerStepTest(unittest.TestCase):
    def test_a_coroutine_that_returns_without_waiting_is_done_in_one_step(self):
        async def ping(x):
            return x

        self.assertEqual(eager.step(ping(7)), (eager.DONE, 7))

    def test_an_error_before_the_first_wait_propagates_from_the_step(self):
        async def broken():
            raise KeyError("k")

        with self.assertRaises(KeyError):
            eager.step(broken())

    def test_a_coroutine_that_waits_carries_on_in_a_task_with_its_result(self):
        async def main():
            loop = asyncio.get_running_loop()
            gate = loop.create_future()
            seen = []

            async def waits():
                seen.append("started")
                value = await gate
                await asyncio.sleep(0)
                return value + 1

            done, resumable = eager.step(waits())
            self.assertIsNot(done, eager.DONE)
            self.assertEqual(seen, ["started"], "ran up to its first wait, synchronously")
            task = loop.create_task(_await(resumable))
            await asyncio.sleep(0)
            gate.set_result(41)
            return await task

        self.assertEqual(asyncio.run(main()), 42)

    def test_cancelling_the_task_raises_cancelled_error_inside_the_coroutine(self):
        async def main():
            loop = asyncio.get_running_loop()
            seen = []

            async def waits():
                try:
                    await loop.create_future()
                except asyncio.CancelledError:
                    seen.append("cancelled inside")
                    raise

            _, resumable = eager.step(waits())
            task = loop.create_task(_await(resumable))
            await asyncio.sleep(0)
            task.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await task
            return seen

        self.assertEqual(asyncio.run(main()), ["cancelled inside"])


async def _await(awaitable):
    return await awaitable


if __name__ == "__main__":
    unittest.main()
