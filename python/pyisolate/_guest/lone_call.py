"""The commonest frame, read in a few steps: one plain call, alone in its chunk, as the host writes it.

The host writes a plain call's header as `{"k":"call","id":` N KEYS ARGS `}`, where KEYS is
`,"target":"T","method":"M","args":`: the same bytes for every call of one method. Parsing the whole header builds a
dict and eight strings per call; here KEYS is parsed once per distinct text and kept (its names interned), and a call
costs a decode of its header, a scan of its id and of its args, and a comparison with the last KEYS. A whole small
call, interleaved on one CPU with the build before: 28.8-29.3 -> 28.2-28.4 µs (decision 59); read as text instead of
cut into bytes first, 0.4-0.8 µs less again (decision 62).

Nothing is accepted here that the general path (FrameDecoder, check_message) would read differently: KEYS is
accepted only when `{"k":"call","id":1` KEYS `[]}` parses to exactly the keys k, id, target, method and args, with
the placeholder id kept (so KEYS repeats none of them but "args", whose last value is the one that counts), and the
same holds with a second placeholder. The id must be JSON digits with no sign or leading zero, ARGS one JSON list with
nothing around it. Anything else gets None and the general path reads the chunk and says what is wrong, if anything.
"""

from __future__ import annotations

import sys

from .framing import _scan_value, _unpack_prefix

_HEAD = '{"k":"call","id":'  # how a call header starts (after the frame's 8-byte prefix)
_ID_AT = len(_HEAD)  # where its id starts in the header's text
_ARGS_KEY = '"args":'
_CLOSE = ord("}")
_ARGS_END = ord("]")
MAX_ID = 10**16 - 1  # the host's ids stay below 2^53 (16 digits); a longer one goes the general way
MAX_KEYS_CHARS = 1024  # a longer KEYS text is read the general way and not kept
MAX_KEPT = 64  # distinct KEYS texts kept; past it the table starts over (names sent by a flood cannot grow it)


class LoneCallReader:
    """`read(chunk)`: (id, target, method, args) of a chunk that is exactly one such call frame, else None.

    The header is decoded once and read by json's C scanner in two steps, the id and the args, with the KEYS text
    between them compared with the last call's, not parsed (decision 62)."""

    def __init__(self) -> None:
        self._kept = {}  # KEYS text -> (target, method)
        self._last = ("", None)  # the KEYS text and names of the last call read: most calls repeat them

    def read(self, data: bytes):
        # ARGS ends the header: a call with a key after them (tags, fds) is not read here, nor scanned first.
        if len(data) <= 9 or data[-1] != _CLOSE or data[-2] != _ARGS_END:
            return None
        total, header_length = _unpack_prefix(data, 0)
        if total != len(data) - 4 or header_length != total - 4:
            return None  # another frame follows, or attachments: the general path
        try:
            text = data[8:].decode("utf-8")
            if not text.startswith(_HEAD):
                return None
            cid, at = _scan_value(text, _ID_AT)
            # A sign, a fraction, an exponent, true, a leading zero (read as 0): the general path decides.
            if type(cid) is not int or not 0 < cid <= MAX_ID:
                return None
            keys, names = self._last
            if not text.startswith(keys, at) or names is None:
                keys, names = self._keys_at(text, at)
                if names is None:
                    return None
            args, end = _scan_value(text, at + len(keys))
        except (StopIteration, ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            return None
        if end != len(text) - 1 or type(args) is not list:
            return None
        return cid, names[0], names[1], args

    def _keys_at(self, text: str, at: int):
        """(KEYS, names) for the KEYS text that starts at `at`, kept for the next calls; names None when it is not a
        plain call's."""
        args_at = text.find(_ARGS_KEY, at, at + MAX_KEYS_CHARS)
        if args_at < 0:
            return "", None
        keys = text[at : args_at + len(_ARGS_KEY)]
        names = self._kept.get(keys)
        if names is None:
            names = _read_keys(keys)
            if names is None:
                return keys, None
            if len(self._kept) >= MAX_KEPT:
                self._kept.clear()
            self._kept[keys] = names
        self._last = (keys, names)
        return keys, names


def _read_keys(keys: str):
    """(target, method) when KEYS, between two placeholder ids and an empty args list, makes exactly a plain call."""
    try:
        whole = '{"k":"call","id":1' + keys + "[]}"
        first, first_end = _scan_value(whole, 0)
        second, _ = _scan_value('{"k":"call","id":2' + keys + "[]}", 0)
    except (StopIteration, ValueError, RecursionError):
        return None
    if (
        type(first) is not dict
        or first_end != len(whole)
        or len(first) != 5
        or first.get("k") != "call"
        or first.get("id") != 1
        or second.get("id") != 2
        or first.get("args") != []
    ):
        return None
    target, method = first.get("target"), first.get("method")
    if type(target) is not str or type(method) is not str:
        return None
    # Interned: a method name that is not misses the type's attribute cache in getattr (a lookup through the MRO).
    return sys.intern(target), sys.intern(method)
