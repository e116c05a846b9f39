"""The commonest frame, read in a few steps: one plain call, alone in its chunk, as the host writes it.

The host writes a plain call's header as `{"k":"call","id":` N KEYS ARGS `}`, where KEYS is
`,"target":"T","method":"M","args":`: the same bytes for every call of one method. Parsing the whole header builds a
dict and eight strings per call; here KEYS is parsed once per distinct text and kept, and a call costs its id's
digits and its args' JSON. A whole small call, interleaved on one CPU with the build before: 28.8-29.3 -> 28.2-28.4 µs
(decision 59).

Nothing is accepted here that the general path (FrameDecoder, check_message) would read differently: KEYS is
accepted only when `{"k":"call","id":1` KEYS `[]}` parses to exactly the keys k, id, target, method and args, with
the placeholder id kept (so KEYS repeats none of them but "args", whose last value is the one that counts), and the
same holds with a second placeholder. The id must be JSON digits with no sign or leading zero, ARGS one JSON list with
nothing around it. Anything else gets None and the general path reads the chunk and says what is wrong, if anything.
"""

from __future__ import annotations

from .framing import _scan_value, _unpack_prefix

_HEAD = b'{"k":"call","id":'  # where a call header starts, after the frame's 8-byte prefix
_ID_AT = 8 + len(_HEAD)  # where the id's digits start
_ARGS_KEY = b'"args":'
_CLOSE = ord("}")
_ZERO = ord("0")
MAX_ID_DIGITS = 16  # the host's ids stay below 2^53 (16 digits); a longer one goes the general way
MAX_KEYS_BYTES = 1024  # a longer KEYS text is read the general way and not kept
MAX_KEPT = 64  # distinct KEYS texts kept; past it the table starts over (names sent by a flood cannot grow it)


class LoneCallReader:
    """`read(chunk)`: (id, target, method, args) of a chunk that is exactly one such call frame, else None."""

    def __init__(self) -> None:
        self._kept = {}  # KEYS bytes -> (target, method)

    def read(self, data: bytes):
        if data[8:_ID_AT] != _HEAD or data[-1] != _CLOSE:
            return None
        total, header_length = _unpack_prefix(data, 0)
        if total != len(data) - 4 or header_length != total - 4:
            return None  # another frame follows, or attachments: the general path
        comma = data.find(b",", _ID_AT)
        digits = data[_ID_AT:comma]
        if comma < 0 or not digits.isdigit() or digits[0] == _ZERO or len(digits) > MAX_ID_DIGITS:
            return None
        args_at = data.find(_ARGS_KEY, comma, comma + MAX_KEYS_BYTES)
        if args_at < 0:
            return None
        args_at += len(_ARGS_KEY)
        keys = data[comma:args_at]
        names = self._kept.get(keys)
        if names is None:
            names = _read_keys(keys)
            if names is None:
                return None
            if len(self._kept) >= MAX_KEPT:
                self._kept.clear()
            self._kept[keys] = names
        try:
            text = data[args_at:-1].decode("utf-8")
            args, end = _scan_value(text, 0)
        except (StopIteration, ValueError, RecursionError):
            return None
        if end != len(text) or type(args) is not list:
            return None
        return int(digits), names[0], names[1], args


def _read_keys(keys: bytes):
    """(target, method) when KEYS, between two placeholder ids and an empty args list, makes exactly a plain call."""
    try:
        text = keys.decode("utf-8")
        whole = '{"k":"call","id":1' + text + "[]}"
        first, first_end = _scan_value(whole, 0)
        second, _ = _scan_value('{"k":"call","id":2' + text + "[]}", 0)
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
    return target, method
