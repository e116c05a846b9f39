"""Coroutines that cannot suspend: an `async def` method with no await in it is run to its end without a task.

Many extension methods are `async def` only because the API is async (pyisolate's ExtensionBase idiom) and compute
their result without waiting. A task per call costs 1-5 us (Python 3.11 queues a handle, registers the task in a
weak set and copies a context) for a coroutine that returns at its first step. When the method's own bytecode has
no suspension point (await, async for, async with, yield), no call to it can suspend: whatever it calls
synchronously cannot yield to the loop. Such a coroutine is stepped once, in a copy of the context as a task would
run it. It sees no current task, so a method that names `current_task` keeps its task.
"""

from __future__ import annotations

import contextvars
import dis

# The opcodes where a coroutine can give control back to the event loop, on every Python from 3.9 to 3.13.
_SUSPENDING = frozenset(
    (
        "GET_AWAITABLE",
        "GET_AITER",
        "GET_ANEXT",
        "BEFORE_ASYNC_WITH",
        "SETUP_ASYNC_WITH",
        "END_ASYNC_FOR",
        "YIELD_VALUE",
        "YIELD_FROM",
        "SEND",
    )
)


def never_suspends(code) -> bool:
    """True when a coroutine of `code` runs to its end in one step and does not ask for its task."""
    if "current_task" in code.co_names:
        return False
    return not any(instruction.opname in _SUSPENDING for instruction in dis.get_instructions(code))


NOT_STRAIGHT = object()  # run()'s answer for a coroutine that may wait: it needs a task


class StraightCoroutines:
    """The verdict per code object, worked out once; and the one-step run."""

    def __init__(self) -> None:
        self._verdicts = {}  # code object -> bool

    def run(self, coro):
        """The coroutine's return value if it cannot wait (its exception propagates; RuntimeError if it suspended
        after all), else NOT_STRAIGHT, with the coroutine untouched."""
        code = coro.cr_code
        verdict = self._verdicts.get(code)
        if verdict is None:
            verdict = self._verdicts[code] = never_suspends(code)
        if not verdict:
            return NOT_STRAIGHT
        try:
            contextvars.copy_context().run(coro.send, None)
        except StopIteration as done:
            return done.value
        self._verdicts[coro.cr_code] = False  # not straight after all: its next calls get a task
        coro.close()
        raise RuntimeError(
            f"{coro.__qualname__} suspended although its code has no suspension point; later calls get a task"
        )
