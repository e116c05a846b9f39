"""Frame layout on the socket: encoder and an incremental decoder with a size limit."""

from __future__ import annotations

import json
import struct

from .large_frame import LargeFrame
from .protocol import DEFAULT_MAX_FRAME_BYTES

_PREFIX = struct.Struct(">II")  # frame length, header length
# json.loads() goes through three Python layers per header; its C scanner alone does the parsing (a value and where
# it ended). The whitespace JSON allows around a value: json.loads accepted it, so this does too.
_scan_value = json.JSONDecoder().scan_once
_JSON_SPACE = " \t\n\r"
_pack_prefix = _PREFIX.pack
_unpack_prefix = _PREFIX.unpack_from
# A frame this big has its attachments read straight from the socket into their own buffers (large_frame.py).
IN_PLACE_MIN = 1024 * 1024


def naturals(values: list) -> bool:
    """Every item an int (not a bool) >= 0: what attachment lengths, shapes and strides must be."""
    for n in values:
        if type(n) is not int or n < 0:
            return False
    return True


class ProtocolError(Exception):
    """A message or frame that breaks docs/protocol.md: the connection cannot continue."""


def encode_frame(header: bytes, attachments=(), lengths=()) -> list:
    """Return the chunks to write for one frame, attachments last and uncopied.

    `lengths` are the attachment byte lengths already listed in the header's "a" field.
    """
    total = 4 + len(header) + sum(lengths)
    prefix = _pack_prefix(total, len(header))
    if not attachments:
        return [prefix + header]  # small frames: one write, one small concatenation
    return [prefix + header, *attachments]


def header_frame(header: bytes) -> bytes:
    """The bytes of a frame that is `header` alone (what encode_frame returns as its one chunk), in fewer steps."""
    n = len(header)
    return _pack_prefix(n + 4, n) + header


class FrameDecoder:
    """Feed it socket chunks; it returns the complete messages they finish.

    Each message is (header dict, list of attachment bytes). Raises ProtocolError on a frame over
    the limit or with lengths that do not add up; the caller must then drop the connection.
    """

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self._buf = bytearray()
        self._max = max_frame_bytes
        self.largest = 0  # the largest frame decoded since the reader last reset this (peer.py: trim after it)
        self._large = None  # a LargeFrame whose attachments are being read into their own buffers

    def idle(self) -> bool:
        """No part of a frame is waiting for the rest."""
        return not self._buf and self._large is None

    def reading_in_place(self) -> bool:
        """A large frame's attachments are being read: the next bytes go into `read_into()`, told to `filled()`."""
        return self._large is not None

    def read_into(self) -> memoryview:
        """Where the large frame's next bytes go (only while reading_in_place())."""
        return self._large.read_into()

    def filled(self, n: int) -> list:
        """`n` more bytes were read into read_into(); the large frame's message once it is complete."""
        if not self._large.filled(n):
            return []
        return [self._finish_large()]

    def _finish_large(self) -> tuple:
        large, self._large = self._large, None
        self.largest = max(self.largest, large.total)
        return large.message()

    def feed(self, data: bytes) -> list:
        out = []
        if self._large is not None:  # a transport that does not read in place: the chunk is copied in
            taken = self._large.fill_from(data)
            if self._large.complete():
                out.append(self._finish_large())
            if taken == len(data):
                return out
            data = memoryview(data)[taken:]
        buf = self._buf
        buf += data
        pos = 0
        end = len(buf)
        while end - pos >= 8:
            total, hlen = _unpack_prefix(buf, pos)
            if total > self._max:
                raise ProtocolError(f"frame of {total} bytes exceeds the limit of {self._max} bytes")
            if hlen + 4 > total:
                raise ProtocolError(f"header length {hlen} does not fit in a frame of {total} bytes")
            if end - pos - 4 < total:
                if total >= IN_PLACE_MIN and end - pos >= 8 + hlen:
                    # The header is here: the attachments are read straight into their own buffers from now on.
                    start = pos + 8
                    msg, lengths = self._header(buf, start, start + hlen, total - 4 - hlen)
                    self._large = LargeFrame(total, msg, lengths)
                    self._large.fill_from(memoryview(buf)[start + hlen : end])
                    pos = end
                break  # the rest of this frame has not arrived yet
            start = pos + 8
            pos += 4 + total
            if total > self.largest:
                self.largest = total
            out.append(self._parse(buf, start, start + hlen, pos))
        if pos:
            del buf[:pos]  # one compaction per chunk, not per frame
        return out

    @staticmethod
    def _parse(buf: bytearray, start: int, body_start: int, body_end: int) -> tuple:
        msg, lengths = FrameDecoder._header(buf, start, body_start, body_end - body_start)
        attachments = []
        at = body_start
        with memoryview(buf) as view:  # released before feed() compacts the buffer
            for n in lengths:
                attachments.append(bytes(view[at : at + n]))  # the one copy out of the buffer
                at += n
        return msg, attachments

    @staticmethod
    def _header(buf: bytearray, start: int, body_start: int, body_length: int) -> tuple:
        """The header at buf[start:body_start], checked, and its attachments' lengths (which add up to body_length)."""
        try:
            text = buf[start:body_start].decode("utf-8")
            at = 0 if text[:1] not in _JSON_SPACE else len(text) - len(text.lstrip(_JSON_SPACE))
            msg, end = _scan_value(text, at)
        except StopIteration:  # no JSON value where the header starts
            raise ProtocolError("frame header is not valid JSON: no value at its start") from None
        except ValueError as e:  # also UnicodeDecodeError
            raise ProtocolError(f"frame header is not valid JSON: {e}") from None
        except RecursionError:
            raise ProtocolError("frame header nests deeper than the JSON parser's recursion limit") from None
        if end != len(text) and text[end:].strip(_JSON_SPACE):
            raise ProtocolError(f"frame header is not valid JSON: extra data after the value at {end}")
        if type(msg) is not dict:
            raise ProtocolError("frame header is not a JSON object")
        lengths = msg.get("a")
        if lengths is None:
            if body_length:
                raise ProtocolError("frame has trailing bytes but no attachment lengths ('a')")
            return msg, ()
        if type(lengths) is not list or not naturals(lengths):
            raise ProtocolError("attachment lengths ('a') must be a list of non-negative integers")
        if sum(lengths) != body_length:
            raise ProtocolError(
                f"attachment lengths add up to {sum(lengths)} bytes but the frame carries {body_length}"
            )
        return msg, lengths
