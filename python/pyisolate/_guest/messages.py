"""The wire's one gate on the guest side: check_message validates every header the host sends (as parseMessage does)."""

from __future__ import annotations

from . import protocol as P
from .framing import ProtocolError

# Kinds whose fields their reader checks itself (session.py reads init and shutdown); here only the kind is checked.
_CONTROL_KINDS = frozenset((P.HELLO, P.INIT, P.READY, P.FATAL, P.SHUTDOWN))


def check_message(msg: dict) -> str:
    """Return the kind of `msg` once its fields are valid; ProtocolError naming the field otherwise.

    Checks ids (positive integers; callable and segment ids non-negative), `target`/`method` or `fn`, `args` (a
    list), `kw` (identifier names), a call's `stream` window, a credit's `n`, error objects, release lists, an
    event's name and the fd count `f`.
    """
    kind = msg.get("k")
    if type(kind) is not str:  # a list or object would not even hash
        raise ProtocolError(f"message kind must be a string, got {type(kind).__name__}")
    if "f" in msg and not _is_id(msg["f"], 0):
        raise ProtocolError(f"'f' must be a count of file descriptors, got {msg['f']!r:.40}")
    if kind == P.CALL:
        _check_call(msg)
    elif kind in (P.RESULT, P.CANCEL, P.ITEM):
        _call_id(msg)
    elif kind == P.CREDIT:
        cid = _call_id(msg)
        n = msg.get("n")
        if not _is_id(n, 1) or n > P.MAX_STREAM_WINDOW:
            raise ProtocolError(f"credit {cid}: 'n' must be a count of items from 1 to {P.MAX_STREAM_WINDOW}")
    elif kind == P.ERROR:
        _check_error(_call_id(msg), msg.get("error"))
    elif kind == P.RELEASE:
        _id_list(msg, "fns", "callable ids", optional=False)
        _id_list(msg, "segs", "segment ids", optional=True)
        _id_list(msg, "cudaExports", "CUDA export ids", optional=True)
        _id_list(msg, "bytes", "pooled bytes memfd numbers", optional=True)
    elif kind == P.EVENT:
        if type(msg.get("name")) is not str:
            raise ProtocolError("event: 'name' must be a string")
    elif kind == P.BATCH:
        _check_batch(msg)
    elif kind == P.CALLS:
        if type(msg.get("target")) is not str or type(msg.get("method")) is not str:
            raise ProtocolError("calls: needs 'target' and 'method' strings")
        _check_run(msg, "calls", "args", ("kw", "stream", "fn"))
        if not all(type(args) is list for args in msg["args"]):
            raise ProtocolError("calls: every entry of 'args' must be a list")
    elif kind == P.RESULTS:
        _check_run(msg, "results", "values", ())
    elif kind not in _CONTROL_KINDS:
        raise ProtocolError(f"unexpected message kind {kind[:40]!r}")
    return kind


def _check_batch(msg: dict) -> None:
    """Every message of a batch is checked before any is dispatched: a batch is refused whole."""
    messages = msg.get("m")
    if type(messages) is not list or not 0 < len(messages) <= P.MAX_BATCH:
        raise ProtocolError(f"batch: 'm' must be a list of 1 to {P.MAX_BATCH} messages")
    if msg.get("f", 0) or "a" in msg:
        raise ProtocolError("batch: a batch frame carries no attachments or fds")
    for inner in messages:
        if type(inner) is not dict:
            raise ProtocolError(f"batch: each message must be an object, got {type(inner).__name__}")
        kind = inner.get("k")
        if type(kind) is not str or kind not in P.BATCHED_KINDS:
            raise ProtocolError(f"batch: {kind!r:.40} messages cannot be batched")
        if "x" in inner or "a" in inner or "f" in inner:
            raise ProtocolError(f"batch: a batched {kind} carries no tags, attachments or fds")
        check_message(inner)


def _check_run(msg: dict, kind: str, entries: str, refused: tuple) -> None:
    """What a calls or results frame shares: `ids` beside the `entries` list, both of 1 to MAX_BATCH; no extras."""
    ids = msg.get("ids")
    values = msg.get(entries)
    if type(ids) is not list or type(values) is not list or not 0 < len(ids) == len(values) <= P.MAX_BATCH:
        raise ProtocolError(
            f"{kind}: 'ids' and '{entries}' must be lists of 1 to {P.MAX_BATCH} entries of the same length"
        )
    if not all(type(cid) is int and cid >= 1 for cid in ids):
        raise ProtocolError(f"{kind}: every id must be a positive integer")
    for field in ("x", "a", "f", *refused):
        if field in msg:
            raise ProtocolError(f"{kind}: a run of plain messages carries no {field!r}")


def _is_id(value, least: int) -> bool:
    return type(value) is int and value >= least  # bool is not an int here


def _call_id(msg: dict) -> int:
    cid = msg.get("id")
    if not _is_id(cid, 1):
        raise ProtocolError(f"{msg['k']}: 'id' must be a positive integer, got {type(cid).__name__}")
    return cid


def _check_call(msg: dict) -> None:
    cid = msg.get("id")
    if type(cid) is not int or cid < 1:  # _call_id, inline: the hottest check (bool is not an int here)
        _call_id(msg)
    if type(msg.get("args")) is not list:
        raise ProtocolError(f"call {cid}: 'args' must be a list")
    if "fn" in msg:
        if not _is_id(msg["fn"], 0):
            raise ProtocolError(f"call {cid}: 'fn' must be a callable id")
    elif type(msg.get("target")) is not str or type(msg.get("method")) is not str:
        raise ProtocolError(f"call {cid}: needs 'target' and 'method' strings, or 'fn'")
    if "stream" in msg:
        window = msg["stream"]
        if not _is_id(window, 1) or window > P.MAX_STREAM_WINDOW:
            raise ProtocolError(f"call {cid}: 'stream' must be a window of items from 1 to {P.MAX_STREAM_WINDOW}")
    if "kw" in msg:
        kw = msg["kw"]
        if type(kw) is not dict:  # "kw": null is malformed too
            raise ProtocolError(f"call {cid}: 'kw' must be an object of keyword arguments, got {type(kw).__name__}")
        for name in kw:
            if not name.isidentifier():
                raise ProtocolError(
                    f"call {cid}: keyword argument name {name[:80]!r} in 'kw' is not a Python identifier"
                )


def _check_error(cid: int, error) -> None:
    if (
        type(error) is not dict
        or type(error.get("type")) is not str
        or type(error.get("message")) is not str
        or type(error.get("traceback", "")) is not str
        or type(error.get("module", "")) is not str
    ):
        raise ProtocolError(f"error {cid}: 'error' must be an object with 'type' and 'message' strings")


def _id_list(msg: dict, field: str, what: str, optional: bool) -> None:
    ids = msg.get(field)
    if optional and ids is None:
        return
    if type(ids) is not list or not all(_is_id(i, 0) for i in ids):
        raise ProtocolError(f"release: '{field}' must be a list of {what}")
