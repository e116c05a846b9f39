"""Streams (docs/protocol.md, Streams): generators the host reads with credit, and host iterables read here."""

from __future__ import annotations

import asyncio
import inspect
import weakref

from . import protocol as P
from .errors import error_from_wire
from .framing import ProtocolError
from .stream_reader import StreamReader

_END = object()
_DRAIN_ABOVE = 1024 * 1024  # unflushed bytes past which a producer waits for the transport to drain
_TURN_ITEMS = 32  # items a producer sends before it gives the event loop a turn


def _iterator(result):
    """(iterator, is_async) for what a stream method returned; TypeError for anything but an (async) iterator."""
    if hasattr(result, "__anext__"):
        return result, True
    if hasattr(result, "__next__"):
        return result, False
    raise TypeError(f"a streamed method must return a generator or async generator, not {type(result).__name__}")


class _Producer:
    __slots__ = ("credit", "wake", "task")

    def __init__(self, credit: int) -> None:
        self.credit = credit
        self.wake = asyncio.Event()
        self.task = None


class Producers:
    """The host's stream calls this guest answers: each runs its generator only while it holds credit.

    A `cancel` cancels the task: the generator sees CancelledError where it awaits, or GeneratorExit at its
    `yield` when it waits for credit; either way it is closed and the stream ends with an `error`.
    """

    def __init__(self, loop, out, drain) -> None:
        self._loop = loop
        self._out = out
        self._drain = drain
        self._running = {}  # call id -> _Producer

    def start(self, cid: int, result, window: int) -> None:
        producer = _Producer(window)
        self._running[cid] = producer
        producer.task = self._loop.create_task(self._run(cid, producer, result))

    def credit(self, cid: int, n: int) -> None:
        producer = self._running.get(cid)
        if producer is None:
            return  # the credit crossed the stream's end
        producer.credit += n
        if producer.credit > P.MAX_STREAM_WINDOW:
            raise ProtocolError(f"credit {cid}: {producer.credit} items outstanding exceeds {P.MAX_STREAM_WINDOW}")
        producer.wake.set()

    def cancel(self, cid: int) -> bool:
        producer = self._running.get(cid)
        if producer is None:
            return False
        producer.task.cancel()
        return True

    def close(self) -> None:
        for producer in self._running.values():
            producer.task.cancel()
        self._running.clear()

    async def _run(self, cid: int, producer: _Producer, result) -> None:
        it = None
        is_async = False
        error = None
        sent = 0
        try:
            if inspect.iscoroutine(
                result
            ):  # an async def that returns a generator (asyncio.iscoroutine takes generators)
                result = await result
            it, is_async = _iterator(result)
            while True:
                while producer.credit <= 0:
                    producer.wake.clear()
                    await producer.wake.wait()
                item = (await it.__anext__()) if is_async else next(it, _END)
                if item is _END:
                    break
                producer.credit -= 1
                sent += 1
                self._out.send({"k": P.ITEM, "id": cid}, "value", item)
                if self._out.buffered() > _DRAIN_ABOVE:
                    await self._drain()
                elif sent % _TURN_ITEMS == 0:
                    await asyncio.sleep(0)  # a sync generator with a wide window: let calls and other streams run
        except StopAsyncIteration:
            pass
        except asyncio.CancelledError:
            error = asyncio.CancelledError("the stream was cancelled by its consumer")
        except Exception as e:
            error = e
        finally:
            await _close(it, is_async)
        if self._running.pop(cid, None) is not producer:
            return  # the connection closed
        if error is None:
            self._out.send({"k": P.RESULT, "id": cid, "value": None})
        else:
            self._out.error(cid, error)


async def _close(it, is_async: bool) -> None:
    """Close a generator that did not finish (GeneratorExit at its yield); errors it raises doing so are dropped."""
    try:
        if is_async and hasattr(it, "aclose"):
            await it.aclose()
        elif not is_async and hasattr(it, "close"):
            it.close()
    except (Exception, asyncio.CancelledError):
        pass


class HostStream(StreamReader):
    """A host async iterable or generator as an extension receives it ({"$iter": id}): an async iterator.

    The first `__anext__` asks the host for the items (a stream call); at most `window` wait here unread. Read
    it from the extension's event loop (an `async def` method). `aclose()` (or leaving an `async for` early
    through an exception) tells the host to stop; an iterable never read is released when collected.
    """

    def __init__(self, peer, stream_id: int) -> None:
        super().__init__(peer)
        self._stream_id = stream_id
        self._unused = weakref.finalize(self, peer._proxies.forget, stream_id)

    def __repr__(self) -> str:
        return f"<HostStream {self._stream_id}>"

    def abandon(self) -> None:
        if self._cid is None:
            self._unused()  # closed before its first read: released now (a finalize runs once)
        super().abandon()

    def _open(self) -> int:
        self._unused.detach()  # the host forgets an iterable once it is streamed
        return self._peer._open_stream(self, self._stream_id, self.window)


def end_error(msg: dict):
    """The exception an `error` message ends a stream with."""
    return error_from_wire(msg.get("error"))
