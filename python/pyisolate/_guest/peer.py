"""The symmetric RPC peer: outgoing calls, incoming calls as tasks, cancel, release, callables."""

from __future__ import annotations

import asyncio
import itertools
import threading
import types

from . import protocol as P
from . import tensors_cuda
from .backlog import EventBacklog
from .bytes_pool import BytesPool
from .codec import Decoder
from .eager import start_task
from .errors import error_from_wire
from .fdchannel import FdChannel
from .framing import FrameDecoder, ProtocolError
from .fresh_bytes import RECYCLER
from .link import Link
from .lone_call import LoneCallReader
from .messages import check_message
from .outbox import Outbox
from .proxies import ProxyTable
from .segments import forget as forget_segments
from .segments import releases
from .sock_transport import SocketTransport
from .straight import NOT_STRAIGHT, StraightCoroutines
from .streams import HostStream, Producers, end_error
from .targets import Targets
from .trim import LARGE_FRAME, Trimmer

_DRAIN_ABOVE = 1024 * 1024  # bytes buffered in the transport before a caller waits for drain
_CONTROL_KINDS = frozenset((P.HELLO, P.INIT, P.READY, P.FATAL, P.EVENT, P.SHUTDOWN))
_NO_KW = object()  # a call without "kw"
LONE_CALL_MAX = 4096  # a chunk up to this size may be one plain call, answered by _lone_plain_call


class Peer:
    """One end of the connection. Construct it inside the event loop that will run it.

    `on_message(msg)` receives the control messages (hello, init, ready, fatal, event, shutdown);
    an event's payload arrives decoded.
    """

    def __init__(
        self, reader=None, writer=None, *, sock=None, on_message=None, max_frame_bytes: int = P.DEFAULT_MAX_FRAME_BYTES
    ) -> None:
        self._loop = asyncio.get_running_loop()
        # A connected socket (the host's Unix socket) gets our own transport; asyncio streams keep theirs.
        self._transport = SocketTransport(self._loop, sock) if sock is not None else writer.transport
        self._thread = threading.get_ident()
        self._frames = FrameDecoder(max_frame_bytes)
        self._lone_calls = LoneCallReader()
        self._trimmer = Trimmer(self._loop, lambda: self._out.buffered())
        self._on_message = on_message
        self._out = Outbox(self._transport, max_frame_bytes)
        self._targets = Targets()
        self._call_ids = itertools.count(1)
        self._pending = {}  # our call id -> future of its result
        self._serving = {}  # their call id -> task running it
        self._cancelled = set()  # their call ids they cancelled: owed no reply
        self._producers = Producers(self._loop, self._out, self._drain_writer)
        self._consuming = {}  # our stream call id -> HostStream, until its end arrives
        self._proxies = ProxyTable(self._loop, self._send_release)
        tensors_cuda.releases.bind(self._loop, self._send_cuda_release)  # CUDA handles need no fd channel
        self._closed = None  # the reason, once closed
        # The host services this extension may call (init's `services`); None: not told, every singleton is remote.
        self.services = None
        self.events = EventBacklog(self._loop, self._thread, self._out.buffered, self._drained)
        self._frame_fds = []  # fds of the frame being dispatched, until a decode takes them
        self._tasks_started = 0  # tasks created for calls that did not start eagerly (_on_data's cork)
        self._straight = StraightCoroutines()
        self._handlers = {
            P.CALL: self._on_call,
            P.RESULT: self._on_result,
            P.ERROR: self._on_error,
            P.CANCEL: self._on_cancel,
            P.RELEASE: self._on_release,
            P.ITEM: self._on_item,
            P.CREDIT: self._on_credit,
        }
        self._link = Link(self._loop, self._on_data, self._on_filled)
        if sock is not None:
            self._link.attach(self._transport)
        else:
            self._link.take_over(reader, writer)  # last: bytes already read are dispatched at once

    def register(self, name: str, obj: object, hidden=()) -> None:
        """Expose obj's public methods as call target `name`; `hidden` names are refused too."""
        self._targets.register(name, obj, hidden)

    def apply_limits(self, limits) -> None:
        """The host's limits on frames it reads (init's `limits`): messages past them fail here, with a ValueError."""
        self._out.apply_limits(limits)

    def enable_batches(self, enabled) -> None:
        """init's `batch`: the host reads batch frames, so replies written together may leave as one."""
        self._out.batching = enabled is True

    def enable_tensors(self, config) -> str:
        """Set up tensor transport from the init message's `tensors` field; returns the mode in use."""
        if type(config) is not dict or config.get("transport") != "shm" or type(config.get("fd")) is not int:
            return "copy"
        channel = FdChannel.open(config["fd"], self._loop)
        if channel is None:
            return "copy"
        self._out.fd_channel = channel
        threshold = config.get("bytesFd")
        self._out.bytes_fd = threshold if type(threshold) is int and threshold > 0 else None
        if self._out.bytes_fd is not None and config.get("bytesReturn") is True:
            self._out.bytes_pool = BytesPool(self._loop)
        RECYCLER.bind(self._loop)  # large received bytes may be made again out of earlier ones (reused_bytes.py)
        releases.bind(self._loop, self._send_segment_release)
        return "shm"

    def _send_segment_release(self, ids: list) -> None:
        if self._closed is None:
            self._out.send({"k": P.RELEASE, "fns": [], "segs": ids})

    def _send_cuda_release(self, keys: list) -> None:
        if self._closed is None:
            self._out.send({"k": P.RELEASE, "fns": [], "cuda": keys})

    def _resolve(self, msg: dict):
        if "fn" in msg:
            fn = self._out.exports.get(msg["fn"])
            if fn is None:
                raise LookupError(f"no callable with id {msg['fn']!r} is exported (released?)")
            return fn
        return self._targets.method(msg.get("target"), msg.get("method"))

    # -- reading -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Wait until the other side closes; ProtocolError if it breaks the rules. Frames are dispatched as they
        arrive (link.py), whether or not this is awaited."""
        try:
            await self._link.done
        finally:
            self.close(ConnectionError("the connection closed"))

    def _on_data(self, data: bytes) -> None:
        if len(data) <= LONE_CALL_MAX and self._frames.idle() and self._lone_plain_call(data):
            return
        self._dispatch_frames(self._frames.feed, data)

    def _on_filled(self, n: int) -> None:
        """`n` bytes were read into the large frame in progress (FrameDecoder.read_into)."""
        self._dispatch_frames(self._frames.filled, n)

    def _dispatch_frames(self, decode, arg) -> None:
        # Replies written while this chunk's frames are dispatched leave in one write. Tasks that cannot start
        # eagerly (Python < 3.12) run in the loop's next pass: the writes stay corked until after them.
        out = self._out
        out.cork()
        started = self._tasks_started
        try:
            for msg, attachments in decode(arg):
                self._dispatch_with_fds(msg, attachments)
                out.flush_if_held()
            msg = attachments = arg = None  # the last frame's bytes must not live until the next one arrives
        finally:
            if self._tasks_started == started:
                out.uncork()
            else:
                self._loop.call_soon(out.uncork)
            frames = self._frames
            self._link.in_place = frames if frames.reading_in_place() else None
        if frames.largest >= LARGE_FRAME:
            frames.largest = 0
            self._trimmer.large_frame()

    def _lone_plain_call(self, data: bytes) -> bool:
        """The commonest chunk, answered in a few steps: exactly one small frame holding one call with no tags, fds,
        keywords, stream or fn. True when it was handled here; False, with nothing done, for anything else (the
        general path then reads the chunk and checks it)."""
        call = self._lone_calls.read(data)
        if call is None:
            return False
        cid, target, method, args = call
        out = self._out
        try:
            result = self._targets.method(target, method)(*args)
            # The commonest method is async and cannot wait (straight.py): its value at once, not through _answer.
            # Each Python call saved here is worth 0.2-0.3 µs on a loaded CPU (bench/README.md, session 16).
            value = self._straight.run(result) if type(result) is types.CoroutineType else NOT_STRAIGHT
        except Exception as e:
            out.error(cid, e)
            return True
        if value is NOT_STRAIGHT:
            self._answer(cid, result, out.result_now)  # a sync method's value, or a task for one that may wait
        else:
            out.result_now(cid, value)
        return True

    def _dispatch_with_fds(self, msg: dict, attachments: list) -> None:
        kind = check_message(msg)
        if kind == P.BATCH:  # its messages were checked with it: plain calls, results and errors
            on_call = self._on_call
            for inner in msg["m"]:
                if inner["k"] == P.CALL:
                    on_call(inner, ())
                    self._out.flush_if_held()
                else:
                    self._dispatch(inner["k"], inner, ())
            return
        if kind == P.CALLS:
            return self._on_calls(msg)
        if kind == P.RESULTS:
            for cid, value in zip(msg["ids"], msg["values"]):
                self._on_result({"k": P.RESULT, "id": cid, "value": value}, ())
            return
        count = msg.get("f", 0)
        if count == 0:
            if kind == P.CALL:
                return self._on_call(msg, attachments)  # the commonest frame, one lookup fewer
            return self._dispatch(kind, msg, attachments)
        channel = self._out.fd_channel
        if channel is None:
            raise ProtocolError(f"a frame announced {count} file descriptors, but none can arrive here")
        self._frame_fds = channel.receive(count)
        try:
            self._dispatch(kind, msg, attachments)
        finally:
            fds, self._frame_fds = self._frame_fds, []
            Decoder(attachments, None, fds).close()  # those no decode took

    def _dispatch(self, kind: str, msg: dict, attachments: list) -> None:
        handler = self._handlers.get(kind)
        if handler is not None:
            handler(msg, attachments)
        elif kind in _CONTROL_KINDS and self._on_message is not None:
            if kind == P.EVENT:
                msg["payload"] = self._decode(msg, attachments, msg.get("payload"))
            self._on_message(msg)
        else:
            raise ProtocolError(f"unexpected message kind {kind!r}")

    def _decode(self, msg: dict, attachments: list, value, kw=_NO_KW):
        """`value` with its tags decoded; given a call's `kw` too, the pair, by one decoder so that tags in either
        share the frame's fds."""
        if "x" not in msg:
            return value if kw is _NO_KW else (value, kw)  # no tags: skip the walk
        fds, self._frame_fds = self._frame_fds, []
        decoder = Decoder(attachments, self._import_fn, fds, self._import_stream)
        try:
            if kw is _NO_KW:
                return decoder.decode(value)
            return decoder.decode(value), decoder.decode(kw)
        except ValueError as e:
            raise ProtocolError(f"bad tagged value in {msg.get('k')!r} message: {e}") from None
        except RecursionError:  # json.loads took the header, but the walk costs more frames per level
            raise ProtocolError(f"the value in a {msg.get('k')!r} message nests too deep to decode") from None
        finally:
            decoder.close()

    def _import_fn(self, fn_id: int):
        return self._proxies.get(self, fn_id)

    def _import_stream(self, stream_id: int):
        return HostStream(self, stream_id)

    # -- incoming calls ------------------------------------------------------------------------

    def _on_call(self, msg: dict, attachments: list) -> None:
        cid = msg["id"]
        kw = msg.get("kw")
        if "x" not in msg:
            args = msg["args"]  # no tags: nothing to decode (the commonest call)
        else:
            try:
                if kw is None:
                    args = self._decode(msg, attachments, msg["args"])
                else:
                    args, kw = self._decode(msg, attachments, msg["args"], kw)
            except ProtocolError:
                raise
            except Exception as e:  # a value this process cannot take (a tensor without numpy, ...)
                self._out.error(cid, e)
                return
        try:
            # check_message saw to it that a call without "fn" names its target and method as strings.
            fn = self._targets.method(msg["target"], msg["method"]) if "fn" not in msg else self._resolve(msg)
            result = fn(*args, **kw) if kw else fn(*args)
        except Exception as e:
            self._out.error(cid, e)
            return
        if "stream" in msg:
            self._producers.start(cid, result, msg["stream"])
            return
        self._answer(cid, result)

    def _on_calls(self, msg: dict) -> None:
        """A run of plain calls of one target and method (checked): each as if it had come alone, in order."""
        target, method, targets, out = msg["target"], msg["method"], self._targets, self._out
        for cid, args in zip(msg["ids"], msg["args"]):
            try:
                result = targets.method(target, method)(*args)
            except Exception as e:
                out.error(cid, e)
                continue
            self._answer(cid, result)
            out.flush_if_held()

    def _answer(self, cid: int, result, reply=None) -> None:
        """Replies to call `cid` with what its method returned: at once, or from a task when it must wait. `reply`
        writes an answer known at once (default: Outbox.result)."""
        if reply is None:
            reply = self._out.result
        if type(result) is types.CoroutineType:
            try:
                value = self._straight.run(result)  # an async method that cannot wait: no task (straight.py)
            except Exception as e:
                self._out.error(cid, e)
                return
            if value is not NOT_STRAIGHT:
                reply(cid, value)
                return
        elif not hasattr(result, "__await__"):
            reply(cid, result)  # a sync method ran inline: reply now
            return
        # The task runs at once, as the current task (asyncio.timeout and TaskGroup bind to it), up to its first wait
        # (eager.py); a call that returns without waiting is answered with no trip around the event loop.
        task, started = start_task(self._loop, self._serve(cid, result))
        if not started:
            self._tasks_started += 1  # its first step, and so its reply, come on the loop's next pass
        if not task.done():
            self._serving[cid] = task

    async def _serve(self, cid: int, awaitable) -> None:
        # The reply is written from inside the task, not from a done callback: that saves one
        # trip around the event loop on every async call.
        try:
            result = await awaitable
        except asyncio.CancelledError:
            self._reply_error(cid, asyncio.CancelledError("the call was cancelled in the callee"))
        except Exception as e:
            self._reply_error(cid, e)
        else:
            if self._owes_reply(cid):
                self._out.result(cid, result)
        finally:
            self._serving.pop(cid, None)
            self._cancelled.discard(cid)

    def _owes_reply(self, cid: int) -> bool:
        # A caller that cancelled is owed nothing; a closed connection takes nothing.
        return cid not in self._cancelled and self._closed is None

    def _reply_error(self, cid: int, error: BaseException) -> None:
        if self._owes_reply(cid):
            self._out.error(cid, error)

    def _on_cancel(self, msg: dict, attachments: list) -> None:
        cid = msg["id"]
        if self._producers.cancel(cid):
            return
        task = self._serving.get(cid)
        if task is not None and not task.done():
            self._cancelled.add(cid)
            task.cancel()

    def _on_release(self, msg: dict, attachments: list) -> None:
        for fn_id in msg["fns"]:
            self._out.exports.pop(fn_id, None)
        segs = msg.get("segs")
        if segs:
            forget_segments(segs)  # the host no longer needs them kept
        exports = msg.get("cudaExports")
        if exports:
            tensors_cuda.release_exports(exports)  # the host and every consumer let go of them
        lent = msg.get("bytes")
        if lent and self._out.bytes_pool is not None:
            self._out.bytes_pool.returned(lent)  # the host copied these out: they may carry the next bytes

    # -- outgoing calls ------------------------------------------------------------------------

    def call(self, target: str, method: str, args, kwargs=None):
        """Return an awaitable for target.method(*args, **kwargs) on the other side.

        Keyword arguments travel as the call's `kw` (none when empty); a JavaScript method gets
        them as one trailing object.
        """
        return self._request({"k": P.CALL, "id": 0, "target": target, "method": method}, args, kwargs)

    def call_fn(self, fn_id: int, args, kwargs=None):
        """Return an awaitable for calling the callable the other side exported as fn_id."""
        return self._request({"k": P.CALL, "id": 0, "fn": fn_id}, args, kwargs)

    async def _request(self, head: dict, args, kwargs=None):
        if threading.get_ident() != self._thread:
            # Called from another thread's event loop: run the call on ours.
            future = asyncio.run_coroutine_threadsafe(self._request(head, args, kwargs), self._loop)
            return await asyncio.wrap_future(future)
        if self._closed is not None:
            raise ConnectionError("cannot call: the connection is closed") from self._closed
        cid = head["id"] = next(self._call_ids)
        self._out.send(head, "args", args, kwargs)
        future = self._loop.create_future()
        self._pending[cid] = future
        try:
            if self._out.buffered() > _DRAIN_ABOVE:
                await self._link.drain()
            return await future
        except asyncio.CancelledError:
            # Our caller gave up: forget the call and tell the other side to stop it.
            if self._pending.pop(cid, None) is not None and self._closed is None:
                self._out.send({"k": P.CANCEL, "id": cid})
            raise

    # -- streams (streams.py) ------------------------------------------------------------------

    def _on_credit(self, msg: dict, attachments: list) -> None:
        self._producers.credit(msg["id"], msg["n"])

    def _on_item(self, msg: dict, attachments: list) -> None:
        stream = self._consuming.get(msg["id"])
        if stream is None:
            raise ProtocolError(f"item {msg['id']}: no stream call with this id is open")
        stream.accept(self._decode(msg, attachments, msg.get("value")))

    def _open_stream(self, stream: HostStream, stream_id: int, window: int) -> int:
        """Ask the host for the items of its iterable `stream_id`; returns the stream call's id."""
        if self._closed is not None:
            raise ConnectionError("cannot read a host stream: the connection is closed") from self._closed
        cid = next(self._call_ids)
        self._consuming[cid] = stream
        self._out.send({"k": P.CALL, "id": cid, "fn": stream_id, "stream": window}, "args", [])
        return cid

    def _open_service_stream(self, stream, target: str, method: str, args, kwargs, window: int) -> int:
        """Ask the host for the items of its service's `target.method(*args, **kwargs)`; returns the call's id."""
        if self._closed is not None:
            raise ConnectionError("cannot read a service stream: the connection is closed") from self._closed
        cid = next(self._call_ids)
        head = {"k": P.CALL, "id": cid, "target": target, "method": method, "stream": window}
        self._out.send(head, "args", args, kwargs)
        self._consuming[cid] = stream  # after the send: arguments that cannot be sent leave nothing behind
        return cid

    def _grant(self, cid: int, n: int) -> None:
        if self._closed is None:
            self._out.send({"k": P.CREDIT, "id": cid, "n": n})

    def _cancel_stream(self, cid: int) -> None:
        if self._closed is None:
            self._out.send({"k": P.CANCEL, "id": cid})

    def _end_stream(self, cid: int, error) -> None:
        stream = self._consuming.pop(cid, None)
        if stream is not None:
            stream.finish(error)

    async def _drain_writer(self) -> None:
        await self._link.drain()

    def _on_result(self, msg: dict, attachments: list) -> None:
        if msg["id"] in self._consuming:
            self._decode(msg, attachments, msg.get("value"))
            return self._end_stream(msg["id"], None)
        future = self._pending.pop(msg["id"], None)
        try:
            value = self._decode(msg, attachments, msg.get("value"))  # decode anyway: proxies get released
        except ProtocolError:
            raise
        except Exception as e:
            if future is not None and not future.done():
                future.set_exception(e)
            return
        if future is not None and not future.done():
            future.set_result(value)

    def _on_error(self, msg: dict, attachments: list) -> None:
        if msg["id"] in self._consuming:
            return self._end_stream(msg["id"], end_error(msg))
        future = self._pending.pop(msg["id"], None)
        if future is not None and not future.done():
            future.set_exception(error_from_wire(msg.get("error")))

    # -- writing -------------------------------------------------------------------------------

    def send(self, head: dict, field: str = None, value=None) -> None:
        """Send a control message; `value` (if any) is encoded into head[field]. Loop thread only."""
        self._out.send(head, field, value)

    def emit(self, name: str, payload) -> None:
        """Send an event from any thread; TypeError at once if unencodable.

        Bounded (backlog.py): past 16 MiB of events the host has not read yet, a thread that emits waits until it
        reads, and an emit on the event loop's thread raises BufferError (it cannot wait for itself).
        """
        if self._closed is not None:
            raise ConnectionError("cannot emit an event: the connection is closed")
        chunks = self._out.frame({"k": P.EVENT, "name": name}, "payload", payload)
        size = sum(memoryview(chunk).nbytes for chunk in chunks)
        self.events.admit(size)  # bounded: blocks a producer thread, fails on the loop's (BufferError)
        if threading.get_ident() == self._thread:
            self._out.write(chunks)
        else:
            self._loop.call_soon_threadsafe(self._write_event, chunks, size)

    def _write_event(self, chunks, size: int) -> None:
        self.events.written(size)
        self._out.write(chunks)

    async def _drained(self) -> None:
        if self._closed is not None:
            raise ConnectionError("cannot emit an event: the connection is closed") from self._closed
        await self._link.drain()

    def _send_release(self, ids: list) -> None:
        self._out.send({"k": P.RELEASE, "fns": ids})

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high-water mark (ConnectionError once closed)."""
        self._out.uncork()
        await self._link.drain()

    # -- closing -------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed is not None

    @property
    def pending_count(self) -> int:
        """Our calls still awaiting a reply."""
        return len(self._pending)

    @property
    def exported_count(self) -> int:
        """Callables we sent that the other side has not released yet."""
        return len(self._out.exports)

    def close(self, reason: BaseException = None) -> None:
        """Settle every pending call, cancel every running call, drop exports. Idempotent."""
        if self._closed is not None:
            return
        self._closed = reason or ConnectionError("the connection was closed locally")
        self._proxies.closed = True
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                error = ConnectionError(f"the call could not complete: {self._closed}")
                error.__cause__ = self._closed
                future.set_exception(error)
        for task in list(self._serving.values()):
            task.cancel()
        self._producers.close()
        consuming, self._consuming = self._consuming, {}
        for stream in consuming.values():
            error = ConnectionError(f"the stream could not complete: {self._closed}")
            error.__cause__ = self._closed
            stream.finish(error)
        self._out.exports.clear()
        self._out.uncork()  # replies already made still go out before the transport closes
        self._out.closed = True
        self._trimmer.close()
        tensors_cuda.releases.unbind()
        if self._out.fd_channel is not None:
            releases.unbind()
            self._out.fd_channel.close()
        if self._out.bytes_pool is not None:
            self._out.bytes_pool.close()
        RECYCLER.clear()
        self._transport.close()
