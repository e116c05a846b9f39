"""A chunk of several calls: the replies of quick calls leave together (one write, one `results` frame), but a slow
call's reply is not held back for the calls after it in the chunk (peer.py HOLD_REPLIES_S)."""

from __future__ import annotations

import json
import socket
import struct
import time
from unittest import mock

from pyisolate._guest.framing import FrameDecoder

from .peers import RawHostCase


def _frame(header: dict) -> bytes:
    data = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack(">II", 4 + len(data), len(data)) + data


def _calls(method: str, count: int) -> bytes:
    return b"".join(
        _frame({"k": "call", "id": i + 1, "target": "extension", "method": method, "args": [i]}) for i in range(count)
    )


def _peek_frames(sock: socket.socket) -> int:
    """Frames the host side could read now, left unread."""
    try:
        data = sock.recv(1 << 20, socket.MSG_PEEK)
    except BlockingIOError:
        return 0
    return len(FrameDecoder().feed(data))


def _replies(data: bytes) -> list:
    """(call id, value) of every result in `data`, whether in `result` or `results` frames."""
    replies = []
    for header, _ in FrameDecoder().feed(data):
        if header["k"] == "results":
            replies += list(zip(header["ids"], header["values"]))
        else:
            replies.append((header["id"], header["value"]))
    return replies


class _Ext:
    def __init__(self) -> None:
        self.host = None
        self.frames_seen = []  # frames the host could read as each slow call began

    def slow(self, i):
        self.frames_seen.append(_peek_frames(self.host))
        time.sleep(0.005)
        return i

    def quick(self, i):
        return i


class ReplyHoldTest(RawHostCase):
    def make_extension(self):
        self.ext = _Ext()
        return self.ext

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.ext.host = self.host

    async def test_a_slow_calls_reply_leaves_before_the_next_call_in_its_chunk_runs(self):
        for batching in (False, True):
            with self.subTest(batching=batching):
                self.peer._out.batching = batching
                self.ext.frames_seen.clear()
                written = await self.deliver(_calls("slow", 3))
                self.assertEqual(self.ext.frames_seen, [0, 1, 2])
                self.assertEqual(_replies(written), [(1, 0), (2, 1), (3, 2)])

    async def test_a_slow_calls_reply_leaves_before_the_next_call_of_its_run(self):
        self.peer._out.batching = True
        ids = [1, 2, 3]
        run = _frame({"k": "calls", "target": "extension", "method": "slow", "ids": ids, "args": [[0], [1], [2]]})
        written = await self.deliver(run)  # the host writes a tick's calls to one method as one frame
        self.assertEqual(self.ext.frames_seen, [0, 1, 2])
        self.assertEqual(_replies(written), [(1, 0), (2, 1), (3, 2)])

    async def test_quick_calls_in_one_chunk_still_leave_as_one_frame(self):
        self.peer._out.batching = True
        with mock.patch("pyisolate._guest.outbox.HOLD_REPLIES_S", 60.0):  # a loaded machine may take 1 ms for 50
            written = await self.deliver(_calls("quick", 50))
        self.assertEqual(_replies(written), [(i + 1, i) for i in range(50)])
        self.assertEqual(len(FrameDecoder().feed(written)), 1)
