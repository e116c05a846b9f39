"""Python values to and from the wire's JSON with tags and binary attachments."""

from __future__ import annotations

import json
import math
import os
import sys

from . import bytes_fd, tensor_value, tensors
from .tensor_value import TensorValue

MAX_SAFE_INT = 2**53 - 1
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _refuse(value: object) -> TypeError:
    return TypeError(f"cannot send value of type '{type(value).__name__}' to the host")


class Encoder:
    """One message's encoding state: its attachments and whether any tag was emitted.

    `export(fn) -> int` stores a callable in the peer's export table and returns its id. With
    `shm` true, numpy arrays and torch tensors go as shared segments whose fds collect in `fds`
    (`keep` holds what keeps them open until sent); else their bytes go as attachments. With
    `bytes_fd` (a byte count), bytes of that size or more go as a sealed memfd among `fds`;
    `fd_bytes` adds up their sizes. With `pool` (bytes_pool.BytesPool) they go in a memfd lent
    from it where it has one, and `lent` lists the numbers of those (handed back if the frame is
    never sent).
    """

    __slots__ = ("attachments", "tagged", "_export", "fds", "keep", "shm", "bytes_fd", "fd_bytes", "pool", "lent")

    def __init__(self, export, shm: bool = False, bytes_fd=None, pool=None) -> None:
        self.attachments = []
        self.tagged = False
        self._export = export
        self.fds = []
        self.keep = []
        self.shm = shm
        self.bytes_fd = bytes_fd
        self.fd_bytes = 0
        self.pool = pool
        self.lent = None

    def add_fd(self, fd: int, keep) -> int:
        """Send `fd` beside the frame (once per fd); returns its index in the frame's fds."""
        self.tagged = True
        try:
            return self.fds.index(fd)
        except ValueError:
            self.fds.append(fd)
            self.keep.append(keep)
            return len(self.fds) - 1

    def attach(self, data) -> int:
        """Add a binary attachment (bytes-like, not copied) and return its index."""
        self.attachments.append(data)
        return len(self.attachments) - 1

    def tag(self, name: str, payload):
        return self._tag(name, payload)

    def encode(self, v):
        t = type(v)
        # Exact-type checks first: they are the hot path of every call.
        if t is str or t is bool or v is None:
            return v
        if t is int:
            return v if -MAX_SAFE_INT <= v <= MAX_SAFE_INT else self._tag("$int", str(v))
        if t is float:
            return v if math.isfinite(v) else self._tag("$float", repr(v))
        if t is list or t is tuple:
            enc = self.encode
            return [enc(x) for x in v]
        if t is dict:
            return self._dict(v)
        if t is bytes:
            return self._bytes(v)
        return self._other(v)

    def keywords(self, kw: dict) -> dict:
        """Encode a call's keyword arguments; TypeError unless every name is a Python identifier."""
        enc = self.encode
        out = {}
        for name, x in kw.items():
            if type(name) is not str or not name.isidentifier():
                raise TypeError(f"keyword argument name {name!r} is not a Python identifier")
            out[name] = enc(x)
        return out

    def _tag(self, name: str, payload):
        self.tagged = True
        return {name: payload}

    def _dict(self, d: dict):
        enc = self.encode
        out = {}
        for k, x in d.items():
            if type(k) is not str:
                return self._map(d)
            out[k] = enc(x)
        if len(out) == 1 and next(iter(out)).startswith("$"):
            return self._map(d)  # would read as a tag: escape it
        return out

    def _map(self, d):
        enc = self.encode
        return self._tag("$map", [[enc(k), enc(x)] for k, x in d.items()])

    def _bytes(self, data):
        threshold = self.bytes_fd
        if threshold is not None and len(data) >= threshold:
            sent = self._bytes_by_fd(data)
            if sent is not None:
                return sent
        index = len(self.attachments)
        self.attachments.append(data)
        return self._tag("$bytes", index)

    def _bytes_by_fd(self, data):
        """A memfd copy of `data` as one of the frame's fds (one lent from the pool, else a fresh sealed one); None
        where no memfd can be made."""
        if self.pool is not None:
            with memoryview(data) as view, view.cast("B") as flat:
                lent = self.pool.lend(flat)  # None when full or out of memory
                size = flat.nbytes
            if lent is not None:
                fd, number = lent
                if self.lent is None:
                    self.lent = []
                self.lent.append(number)
                self.fd_bytes += size
                return self._tag("$bytes", {"fd": self.add_fd(fd, None), "size": size, "lent": number})
        try:
            owned = bytes_fd.write_memfd(data)
        except OSError:
            return None
        size = memoryview(data).nbytes
        self.fd_bytes += size
        return self._tag("$bytes", {"fd": self.add_fd(owned.fd, owned), "size": size})

    def _other(self, v):
        # Subclasses and the less common types, off the hot path.
        if isinstance(v, str):
            return str.__str__(v)
        if isinstance(v, int):
            return self.encode(int(v))
        if isinstance(v, float):
            return self.encode(float(v))
        if isinstance(v, (bytearray, memoryview)):
            if self.bytes_fd is not None and memoryview(v).nbytes >= self.bytes_fd:
                sent = self._bytes_by_fd(v)  # the memfd is the snapshot: no copy before it
                if sent is not None:
                    return sent
            # Snapshot mutable buffers: the transport may hold them after write() returns.
            return self._bytes(v.tobytes() if isinstance(v, memoryview) else bytes(v))
        if isinstance(v, bytes):
            return self._bytes(bytes(v))
        if isinstance(v, TensorValue):  # pyisolate's plain tensor dict, made for a worker without torch or numpy
            return tensor_value.encode(v, self)
        if isinstance(v, dict):
            return self._dict(dict(v))
        if isinstance(v, (list, tuple)):
            enc = self.encode
            return [enc(x) for x in v]
        encoded = tensors.encode(v, self, self.shm)  # before the dataclass test: tensors are the common case here
        if encoded is not tensors.NOT_A_TENSOR:
            return encoded
        dataclasses = sys.modules.get("dataclasses")  # no dataclass exists unless its module was imported
        if dataclasses is not None and dataclasses.is_dataclass(v) and not isinstance(v, type):
            # A dataclass travels as the dict of its fields, the shape `pyisolate types` gives it on the host.
            return self._dict({f.name: getattr(v, f.name) for f in dataclasses.fields(v)})
        if callable(v) and not isinstance(v, type):
            return self._tag("$fn", self._export(v))
        raise _refuse(v)


class Decoder:
    """Turns tagged JSON back into Python values.

    `attachments` are the frame's bytes; `import_fn(id)` returns a proxy for a callable the
    other side exported, `import_stream(id)` an async iterator over an iterable it exported; `fds` the descriptors that came with the frame (owned: those no tensor
    took are closed by `close()`). Raises ValueError on an unknown tag or a bad tag payload.
    """

    __slots__ = ("_attachments", "_import_fn", "_fds", "_frame", "_import_stream")

    def __init__(self, attachments, import_fn, fds=None, import_stream=None) -> None:
        self._attachments = attachments
        self._import_fn = import_fn
        self._import_stream = import_stream
        self._fds = fds if fds is not None else []
        self._frame = None

    def close(self) -> None:
        """Close the frame's fds that no tensor took."""
        for i, fd in enumerate(self._fds):
            if fd is not None:
                self._fds[i] = None
                try:
                    os.close(fd)
                except OSError:
                    pass

    def decode(self, v):
        t = type(v)
        if t is list:
            dec = self.decode
            return [dec(x) for x in v]
        if t is not dict:
            return v
        if len(v) == 1:
            k = next(iter(v))
            if k.startswith("$"):
                return self._tag(k, v[k])
        dec = self.decode
        return {k: dec(x) for k, x in v.items()}

    def _tag(self, name: str, payload):
        if name == "$bytes":
            if type(payload) is dict:
                return self._bytes_from_fd(payload)
            if type(payload) is not int or not 0 <= payload < len(self._attachments):
                raise ValueError(f"$bytes refers to missing attachment {payload!r}")
            return self._attachments[payload]
        if name == "$fn":
            if type(payload) is not int or payload <= 0:
                raise ValueError(f"$fn id must be a positive integer, got {payload!r}")
            return self._import_fn(payload)
        if name == "$iter":
            if type(payload) is not int or payload <= 0:
                raise ValueError(f"$iter id must be a positive integer, got {payload!r}")
            if self._import_stream is None:
                raise ValueError("a $iter value (a stream) cannot be received here")
            return self._import_stream(payload)
        if name == "$int":
            if type(payload) is not str:
                raise ValueError("$int payload must be a decimal string")
            return int(payload)
        if name == "$float":
            if type(payload) is not str or payload not in _NON_FINITE:  # an unhashable payload cannot be looked up
                raise ValueError(f"$float payload must be nan, inf or -inf, got {payload!r}")
            return _NON_FINITE[payload]
        if name == "$map":
            if type(payload) is not list:
                raise ValueError("$map payload must be a list of [key, value] pairs")
            return dict(self._pair(p) for p in payload)
        if name == "$tensor":
            if self._frame is None:
                self._frame = tensors.ReceivedFrame(self._fds, self._attachments)
            return tensors.decode(payload, self._frame)
        raise ValueError(f"unknown tag {name!r}")

    def _bytes_from_fd(self, payload: dict) -> bytes:
        index, size = payload.get("fd"), payload.get("size")
        if (
            len(payload) != 2
            or type(index) is not int
            or type(size) is not int
            or size < 0
            or not 0 <= index < len(self._fds)
            or self._fds[index] is None
        ):
            raise ValueError(f"$bytes {payload!r} does not name one of the frame's fds and a size")
        fd, self._fds[index] = self._fds[index], None  # taken: closed here, never mapped by a tensor too
        try:
            return bytes_fd.read_memfd(fd, size)
        finally:
            bytes_fd.release(fd, size)

    def _pair(self, pair):
        if type(pair) is not list or len(pair) != 2:
            raise ValueError("$map entries must be [key, value] pairs")
        key = _hashable(self.decode(pair[0]))
        return key, self.decode(pair[1])


def _hashable(key):
    # Tuples travel as lists; turn list keys back into tuples so they can key a dict.
    if type(key) is list:
        return tuple(_hashable(k) for k in key)
    if type(key) is dict:
        raise ValueError("$map key is an object, which cannot key a Python dict")
    try:
        hash(key)
    except TypeError:  # e.g. a tensor decoded as a numpy array
        raise ValueError(f"$map key of type {type(key).__name__} cannot key a Python dict") from None
    return key


_COMPACT = {"separators": (",", ":"), "allow_nan": False, "check_circular": False}


def _one_shot_encoder(ensure_ascii: bool):
    """A compact JSON encoder built once. json.dumps() with keyword arguments builds a new encoder per call, and
    JSONEncoder.encode builds a new C encoder per call too; the C encoder itself is reused here where there is one."""
    encoder = json.JSONEncoder(ensure_ascii=ensure_ascii, **_COMPACT)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # an interpreter without the _json accelerator
        return encoder.encode
    quote = json.encoder.encode_basestring_ascii if ensure_ascii else json.encoder.encode_basestring
    chunks = make(None, encoder.default, quote, None, ":", ",", False, False, False)
    join = "".join
    return lambda value: join(chunks(value, 0))


_encode_utf8 = _one_shot_encoder(ensure_ascii=False)
_encode_ascii = _one_shot_encoder(ensure_ascii=True)


def dumps(message: dict) -> bytes:
    """Serialise an already-encoded message as the UTF-8 JSON header."""
    try:
        return _encode_utf8(message).encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates (e.g. undecodable file names) cannot be UTF-8: escape them instead.
        return _encode_ascii(message).encode("ascii")
