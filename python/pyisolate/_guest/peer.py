"""The symmetric RPC peer: outgoing calls, incoming calls as tasks, cancel, release, callables."""

from __future__ import annotations

import asyncio
import itertools
import threading
import types
from functools import partial

from . import protocol as P
from .codec import Decoder, Encoder, dumps
from .errors import error_from_wire, error_to_wire
from .framing import FrameDecoder, ProtocolError, encode_frame
from .proxies import ProxyTable

_READ_CHUNK = 256 * 1024
_DRAIN_ABOVE = 1024 * 1024  # bytes buffered in the transport before a caller waits for drain
_CONTROL_KINDS = frozenset((P.HELLO, P.INIT, P.READY, P.FATAL, P.EVENT, P.SHUTDOWN))


class Peer:
    """One end of the connection. Construct it inside the event loop that will run it.

    `on_message(msg)` receives the control messages (hello, init, ready, fatal, event, shutdown);
    an event's payload arrives decoded.
    """

    def __init__(self, reader, writer, *, on_message=None,
                 max_frame_bytes: int = P.DEFAULT_MAX_FRAME_BYTES) -> None:
        self._reader = reader
        self._writer = writer
        self._transport = writer.transport
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._frames = FrameDecoder(max_frame_bytes)
        self._max = max_frame_bytes
        self._on_message = on_message
        self._call_ids = itertools.count(1)
        self._fn_ids = itertools.count(1)
        self._pending = {}     # our call id -> future of its result
        self._serving = {}     # their call id -> task running it
        self._cancelled = set()  # their call ids they cancelled: owed no reply
        self._exports = {}     # fn id -> callable we sent
        self._targets = {}     # target name -> (object, names refused on it)
        self._proxies = ProxyTable(self._loop, self._send_release)
        self._closed = None    # the reason, once closed
        self._handlers = {P.CALL: self._on_call, P.RESULT: self._on_result,
                          P.ERROR: self._on_error, P.CANCEL: self._on_cancel,
                          P.RELEASE: self._on_release}

    # -- targets -------------------------------------------------------------------------------

    def register(self, name: str, obj: object, hidden=frozenset()) -> None:
        """Expose obj's public methods as call target `name`; `hidden` names are refused too."""
        if name in self._targets:
            raise ValueError(f"a call target named {name!r} is already registered")
        self._targets[name] = (obj, frozenset(hidden))

    def _resolve(self, msg: dict):
        if "fn" in msg:
            fn = self._exports.get(msg["fn"])
            if fn is None:
                raise LookupError(f"no callable with id {msg['fn']!r} is exported (released?)")
            return fn
        target, method = msg.get("target"), msg.get("method")
        entry = self._targets.get(target)
        if entry is None:
            raise LookupError(f"no call target named {target!r}")
        obj, hidden = entry
        if type(method) is not str or method.startswith("_") or method in hidden:
            raise AttributeError(f"{method!r} is not a public method of {target!r}")
        attr = getattr(obj, method, None)
        if attr is None or not callable(attr) or isinstance(attr, type):
            raise AttributeError(f"{target!r} has no method {method!r}")
        return attr

    # -- reading -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Read and dispatch until the other side closes; ProtocolError if it breaks the rules."""
        try:
            while True:
                data = await self._reader.read(_READ_CHUNK)
                if not data:
                    return
                for msg, attachments in self._frames.feed(data):
                    self._dispatch(msg, attachments)
        finally:
            self.close(ConnectionError("the connection closed"))

    def _dispatch(self, msg: dict, attachments: list) -> None:
        kind = msg.get("k")
        handler = self._handlers.get(kind)
        if handler is not None:
            handler(msg, attachments)
        elif kind in _CONTROL_KINDS and self._on_message is not None:
            if kind == P.EVENT:
                msg["payload"] = self._decode(msg, attachments, msg.get("payload"))
            self._on_message(msg)
        else:
            raise ProtocolError(f"unexpected message kind {kind!r}")

    def _decode(self, msg: dict, attachments: list, value):
        if "x" not in msg:
            return value  # no tags: skip the walk
        try:
            return Decoder(attachments, self._import_fn).decode(value)
        except ValueError as e:
            raise ProtocolError(f"bad tagged value in {msg.get('k')!r} message: {e}") from None

    def _import_fn(self, fn_id: int):
        return self._proxies.get(self, fn_id)

    # -- incoming calls ------------------------------------------------------------------------

    def _on_call(self, msg: dict, attachments: list) -> None:
        cid = msg.get("id")
        if type(cid) is not int:
            raise ProtocolError(f"call id must be an integer, got {cid!r}")
        args = self._decode(msg, attachments, msg.get("args", []))
        try:
            if type(args) is not list:
                raise TypeError("call arguments must be a list")
            result = self._resolve(msg)(*args)
        except Exception as e:
            self._send_error(cid, e)
            return
        if type(result) is types.CoroutineType:
            task = self._loop.create_task(result)
        elif hasattr(result, "__await__"):
            task = asyncio.ensure_future(result)
        else:
            self._send_result(cid, result)  # a sync method ran inline: reply now
            return
        self._serving[cid] = task
        task.add_done_callback(partial(self._call_done, cid))

    def _call_done(self, cid: int, task) -> None:
        self._serving.pop(cid, None)
        if cid in self._cancelled:
            self._cancelled.discard(cid)  # the caller already gave up: it is owed nothing
            return
        if self._closed is not None:
            return
        if task.cancelled():
            self._send_error(cid, asyncio.CancelledError("the call was cancelled in the callee"))
            return
        exc = task.exception()
        if exc is not None:
            self._send_error(cid, exc)
        else:
            self._send_result(cid, task.result())

    def _on_cancel(self, msg: dict, attachments: list) -> None:
        cid = msg.get("id")
        task = self._serving.get(cid)
        if task is not None and not task.done():
            self._cancelled.add(cid)
            task.cancel()

    def _on_release(self, msg: dict, attachments: list) -> None:
        fns = msg.get("fns")
        if type(fns) is not list:
            raise ProtocolError("release needs a list of callable ids ('fns')")
        for fn_id in fns:
            self._exports.pop(fn_id, None) if type(fn_id) is int else None

    # -- outgoing calls ------------------------------------------------------------------------

    def call(self, target: str, method: str, args):
        """Return an awaitable for target.method(*args) on the other side."""
        return self._request({"k": P.CALL, "id": 0, "target": target, "method": method}, args)

    def call_fn(self, fn_id: int, args):
        """Return an awaitable for calling the callable the other side exported as fn_id."""
        return self._request({"k": P.CALL, "id": 0, "fn": fn_id}, args)

    async def _request(self, head: dict, args):
        if threading.get_ident() != self._thread:
            # Called from another thread's event loop: run the call on ours.
            future = asyncio.run_coroutine_threadsafe(self._request(head, args), self._loop)
            return await asyncio.wrap_future(future)
        if self._closed is not None:
            raise ConnectionError("cannot call: the connection is closed") from self._closed
        cid = head["id"] = next(self._call_ids)
        self._write(self._frame(head, "args", args))
        future = self._loop.create_future()
        self._pending[cid] = future
        try:
            if self._transport.get_write_buffer_size() > _DRAIN_ABOVE:
                await self._writer.drain()
            return await future
        except asyncio.CancelledError:
            # Our caller gave up: forget the call and tell the other side to stop it.
            if self._pending.pop(cid, None) is not None and self._closed is None:
                self._write(self._frame({"k": P.CANCEL, "id": cid}))
            raise

    def _on_result(self, msg: dict, attachments: list) -> None:
        future = self._pending.pop(msg.get("id"), None)
        value = self._decode(msg, attachments, msg.get("value"))  # decode anyway: proxies get released
        if future is not None and not future.done():
            future.set_result(value)

    def _on_error(self, msg: dict, attachments: list) -> None:
        future = self._pending.pop(msg.get("id"), None)
        if future is not None and not future.done():
            future.set_exception(error_from_wire(msg.get("error")))

    # -- writing -------------------------------------------------------------------------------

    def send(self, head: dict, field: str = None, value=None) -> None:
        """Send a control message; `value` (if any) is encoded into head[field]. Loop thread only."""
        self._write(self._frame(head, field, value))

    def emit(self, name: str, payload) -> None:
        """Send an event from any thread without blocking; TypeError at once if unencodable."""
        if self._closed is not None:
            raise ConnectionError("cannot emit an event: the connection is closed")
        chunks = self._frame({"k": P.EVENT, "name": name}, "payload", payload)
        if threading.get_ident() == self._thread:
            self._write(chunks)
        else:
            self._loop.call_soon_threadsafe(self._write, chunks)

    def _frame(self, head: dict, field: str = None, value=None) -> list:
        if field is None:
            return encode_frame(dumps(head))
        enc = Encoder(self._export)
        head[field] = enc.encode(value)
        if enc.tagged:
            head["x"] = 1
        lengths = ()
        if enc.attachments:
            lengths = head["a"] = [memoryview(b).nbytes for b in enc.attachments]
        header = dumps(head)
        size = 4 + len(header) + sum(lengths)
        if size > self._max:
            raise ValueError(f"message of {size} bytes exceeds the frame limit of {self._max} bytes")
        return encode_frame(header, enc.attachments, lengths)

    def _export(self, fn) -> int:
        fn_id = next(self._fn_ids)
        self._exports[fn_id] = fn
        return fn_id

    def _write(self, chunks: list) -> None:
        if self._closed is None:
            write = self._transport.write
            for chunk in chunks:
                write(chunk)

    def _send_result(self, cid: int, value) -> None:
        try:
            chunks = self._frame({"k": P.RESULT, "id": cid}, "value", value)
        except Exception as e:  # unencodable or too large: the caller gets the reason instead
            self._send_error(cid, e)
            return
        self._write(chunks)

    def _send_error(self, cid: int, exc: BaseException) -> None:
        self._write(encode_frame(dumps({"k": P.ERROR, "id": cid, "error": error_to_wire(exc)})))

    def _send_release(self, ids: list) -> None:
        self._write(self._frame({"k": P.RELEASE, "fns": ids}))

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
        return len(self._exports)

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
        self._exports.clear()
        self._transport.close()
