"""Starting a called coroutine at once: most calls finish without waiting, and then need no task at all."""

from __future__ import annotations

import types

DONE = object()  # step(): the coroutine returned; its value is the second item


def step(coro):
    """Run `coro` to its first suspension. Returns (DONE, value) when it returned, or (None, resumable) where
    `resumable` is an awaitable that carries on from where it stopped (await it in a task). Exceptions propagate."""
    try:
        pending = coro.send(None)
    except StopIteration as stop:
        return DONE, stop.value
    return None, _Resumed(coro, pending)


def is_coroutine(value) -> bool:
    return type(value) is types.CoroutineType


class _Resumed:
    """A started coroutine as an awaitable: hands the task what the coroutine yielded first, then relays the rest,
    cancellation included (thrown in), as `await coro` would have."""

    __slots__ = ("_coro", "_pending")

    def __init__(self, coro, pending) -> None:
        self._coro = coro
        self._pending = pending

    def __await__(self):
        coro, out = self._coro, self._pending
        self._pending = None
        while True:
            try:
                sent = yield out
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as thrown:  # noqa: BLE001 - relayed into the coroutine, as await does
                try:
                    out = coro.throw(thrown)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    out = coro.send(sent)
                except StopIteration as stop:
                    return stop.value
