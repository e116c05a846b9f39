"""The sending half of a peer: messages to frames, the export table, writes that never wait."""

from __future__ import annotations

import itertools
from json.encoder import encode_basestring as _quote
from time import monotonic as _monotonic

from . import protocol as P
from .codec import MAX_SAFE_INT, Encoder, dumps
from .errors import error_to_wire
from .framing import _pack_prefix, encode_frame

_CORK_CHUNK_MAX = 64 * 1024  # chunks above this bypass the cork (no copy of large attachments)
_CORK_BYTES_MAX = 256 * 1024  # a cork holding this much is flushed at once
HOLD_REPLIES_S = 0.001  # the longest the cork holds a read's replies back while its later calls run
_SMALL_STR = 4096  # a reply string shorter than this is far below every header limit
_LITERALS = {True: "true", False: "false", None: "null"}


class Outbox:
    """Encodes and writes messages on one transport.

    Callables found in values are stored in `exports` under fresh ids. Writes go straight to
    the transport's buffer; callers that can wait use `buffered` to decide when to drain.
    """

    def __init__(self, transport, max_frame_bytes: int) -> None:
        self._transport = transport
        self._max = max_frame_bytes
        # The host's limits on what it reads (init's `limits`): a message past one is refused here, as a
        # ValueError for the caller, instead of reaching the host, which would stop the extension.
        self._max_header = None
        self._max_attachments = None
        self._max_fds = None
        self._fn_ids = itertools.count(1)
        self.exports = {}  # fn id -> callable we sent, until the other side releases it
        self.closed = False
        self.fd_channel = None  # set when tensors travel as shared segments (see tensors.py)
        self.bytes_fd = None  # bytes of this many or more go as a sealed memfd (init's tensors.bytesFd)
        self.bytes_pool = None  # their reusable memfds, where the host hands them back (init's tensors.bytesReturn)
        self._corked = None  # while corked: small chunks waiting to leave in one write
        self._corked_size = 0
        self._held_since = 0.0  # when the cork began to hold writes (or last let them go)
        self.batching = False  # the host reads batch frames (init's `batch`)
        self._batch = None  # while corked and batching: (call id, value JSON) of plain results, to leave as one frame

    def frame(self, head: dict, field: str = None, value=None, kw=None) -> list:
        """Encode `value` into head[field] (tags, attachments) and return the frame's chunks.

        `kw` (a call's keyword arguments; empty or None for none) goes into head["kw"], encoded
        by the same Encoder so that its tags share the frame's attachments and fds.
        """
        if field is None:
            return encode_frame(dumps(head))
        channel = self.fd_channel is not None
        enc = Encoder(self._export, channel, self.bytes_fd if channel else None, self.bytes_pool if channel else None)
        try:
            return self._frame(head, field, value, kw, enc)
        except BaseException:
            if enc.lent:
                self.bytes_pool.returned(enc.lent)  # never sent: the host will not hand them back
            raise

    def _frame(self, head: dict, field: str, value, kw, enc: Encoder) -> list:
        head[field] = enc.encode(value)
        if kw:
            head["kw"] = enc.keywords(kw)
        if enc.tagged:
            head["x"] = 1
        if enc.fds:
            head["f"] = len(enc.fds)
        lengths = ()
        if enc.attachments:
            lengths = head["a"] = [memoryview(b).nbytes for b in enc.attachments]
        header = dumps(head)
        size = 4 + len(header) + sum(lengths)
        if size > self._max:
            raise ValueError(
                f"message of {size} bytes exceeds the frame limit of {self._max} bytes (host limit maxFrameBytes)"
            )
        if enc.fd_bytes > self._max:
            raise ValueError(
                f"bytes sent by memfd: {enc.fd_bytes} exceeds the host's limit maxFrameBytes = {self._max}"
            )
        _check("maxHeaderBytes", "message header bytes", len(header), self._max_header)
        _check("maxAttachments", "message attachments", len(lengths), self._max_attachments)
        _check("maxFdsPerFrame", "message file descriptors", len(enc.fds), self._max_fds)
        chunks = encode_frame(header, enc.attachments, lengths)
        return _WithFds(chunks, enc.fds, enc.keep) if enc.fds else chunks

    def apply_limits(self, limits) -> None:
        """Adopt the host's limits from the init message (absent or malformed: keep the defaults)."""
        if type(limits) is not dict:
            return
        frame = limits.get("maxFrameBytes")
        if type(frame) is int and frame > 0:
            self._max = frame
        self._max_header = _positive(limits.get("maxHeaderBytes"))
        self._max_attachments = _positive(limits.get("maxAttachments"))
        self._max_fds = _positive(limits.get("maxFdsPerFrame"))

    def _export(self, fn) -> int:
        fn_id = next(self._fn_ids)
        self.exports[fn_id] = fn
        return fn_id

    def write(self, chunks: list) -> None:
        """Queue a frame on the transport (its fds first); dropped once closed (nobody is listening)."""
        if self.closed:
            return
        channel = self.fd_channel
        fds = getattr(chunks, "fds", None)
        if channel is not None and (fds or channel.queued):
            channel.submit(fds or [], getattr(chunks, "keep", None), lambda: self._write_now(chunks))
        else:
            self._write_now(chunks)

    def _write_now(self, chunks: list) -> None:
        if self.closed:
            return
        if self._batch:
            self._flush_batch()  # the replies batched so far go first: frames keep their order
        if self._corked is not None:
            for chunk in chunks:
                size = len(chunk) if type(chunk) is bytes else memoryview(chunk).nbytes
                if size > _CORK_CHUNK_MAX:  # a large attachment is written as it is, not copied into a join
                    self._flush_corked()
                    self._transport.write(chunk)
                    continue
                self._corked.append(chunk)  # not a local: a flush above replaced the list
                self._corked_size += size
            if self._corked_size > _CORK_BYTES_MAX:
                self._flush_corked()
            return
        write = self._transport.write
        for chunk in chunks:
            write(chunk)

    def cork(self) -> None:
        """Hold small writes until uncork(): a burst of replies costs one send instead of one each, and their plain
        results one `results` frame when the host reads those."""
        if self._corked is None:
            self._corked = []
            self._held_since = _monotonic()
            if self.batching:
                self._batch = []

    def flush_if_held(self) -> None:
        """Between the calls of one read: once the cork has held writes for HOLD_REPLIES_S, they leave now (and the
        cork stays), so a slow call's reply, and those before it, do not wait for the calls after it."""
        if self._corked is not None and _monotonic() - self._held_since > HOLD_REPLIES_S:
            self._write_held()
            self._held_since = _monotonic()

    def uncork(self) -> None:
        if self._corked is not None:
            self._write_held()
            self._batch = None
            self._corked = None

    def _write_held(self) -> None:
        """Writes what the cork holds: the batched plain results as their frame, then every held chunk."""
        if self._batch:
            self._flush_batch()
        self._flush_corked()

    def _flush_batch(self) -> None:
        batch, self._batch = self._batch, []
        if len(batch) > 1:
            ids = ",".join([str(cid) for cid, _ in batch])
            values = ",".join([value for _, value in batch])
            header = f'{{"k":"results","ids":[{ids}],"values":[{values}]}}'.encode()
            if self._max_header is None or len(header) <= self._max_header:
                self._write_now(encode_frame(header))
                return
        for cid, value in batch:  # one reply, or a run past the host's header limit: each in a frame of its own
            self._write_now([_result_frame(cid, value)])

    def _flush_corked(self) -> None:
        corked = self._corked
        if corked:
            self._corked = []
            self._corked_size = 0
            if not self.closed:
                self._transport.write(corked[0] if len(corked) == 1 else b"".join(corked))

    def send(self, head: dict, field: str = None, value=None, kw=None) -> None:
        self.write(self.frame(head, field, value, kw))

    def result(self, cid: int, value) -> None:
        """Answer call `cid` with `value`, or with the error that stopped it from being sent."""
        # Batched only while no frame waits for its fds to be sent (fdchannel.py): a reply must not overtake it.
        if self._batch is not None and self._nothing_waits():
            json = _plain_json(value)
            if json is not None:
                self._batch.append((cid, json))
                if len(self._batch) >= P.MAX_BATCH:
                    self._flush_batch()
                return
        t = type(value)
        if t is str or t is bool or value is None or (t is int and -MAX_SAFE_INT <= value <= MAX_SAFE_INT):
            # The commonest replies need no tag, attachment or limit check (a str over the limits is not small: it
            # takes the general path): no Encoder.
            if t is not str or len(value) < _SMALL_STR:
                self.write(encode_frame(dumps({"k": P.RESULT, "id": cid, "value": value})))
                return
        try:
            chunks = self.frame({"k": P.RESULT, "id": cid}, "value", value)
        except Exception as e:  # unencodable or too large: the caller gets the reason instead
            self.error(cid, e)
            return
        self.write(chunks)

    def result_now(self, cid: int, value) -> None:
        """result(), written straight to the transport when nothing is corked or waits for its fds and the value needs
        no tag (an int, first, in the fewest steps: the commonest reply)."""
        if type(value) is int and -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            json = repr(value)
        else:
            json = _plain_json(value)
        channel = self.fd_channel
        if json is None or self._corked is not None or self.closed or (channel is not None and channel.queued):
            self.result(cid, value)  # the checks of _nothing_waits, inline: this is the hot path
        else:
            self._transport.write(_result_frame(cid, json))

    def _nothing_waits(self) -> bool:
        channel = self.fd_channel
        return not self.closed and (channel is None or not channel.queued)

    def error(self, cid: int, exc: BaseException) -> None:
        self.write(encode_frame(dumps({"k": P.ERROR, "id": cid, "error": error_to_wire(exc)})))

    def buffered(self) -> int:
        """Bytes waiting in the transport (and in the cork)."""
        return self._transport.get_write_buffer_size() + self._corked_size


def _plain_json(value):
    """A reply value's JSON text, as dumps() writes it, when it needs no tag, limit check or UTF-8 pass: an int within
    ±2^53-1, a bool, None or an ASCII string under _SMALL_STR characters. None for any other value."""
    t = type(value)
    if t is int:
        return repr(value) if -MAX_SAFE_INT <= value <= MAX_SAFE_INT else None
    if t is str:
        return _quote(value) if len(value) < _SMALL_STR and value.isascii() else None
    if t is bool or value is None:
        return _LITERALS[value]
    return None


def _result_frame(cid: int, json: str) -> bytes:
    """The frame (one chunk) of one plain result whose value is already JSON text (header_frame's steps, inline)."""
    header = f'{{"k":"result","id":{cid},"value":{json}}}'.encode()
    n = len(header)
    return _pack_prefix(n + 4, n) + header


class _WithFds(list):
    """A frame's chunks with the fds to send just before them (and what keeps those fds open)."""

    def __init__(self, chunks, fds, keep) -> None:
        super().__init__(chunks)
        self.fds = fds
        self.keep = keep


def _positive(value):
    return value if type(value) is int and value >= 0 else None


def _check(limit: str, what: str, count: int, allowed) -> None:
    if allowed is not None and count > allowed:
        raise ValueError(f"{what}: {count} exceeds the host's limit {limit} = {allowed}")
