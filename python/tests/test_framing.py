"""Frames: round trips, chunking, and the malformed frames that must end the connection."""

import json
import struct
import unittest

from pyisolate._guest.framing import FrameDecoder, ProtocolError, encode_frame


def frame(msg: dict, attachments=()) -> bytes:
    lengths = [len(a) for a in attachments]
    if attachments:
        msg = dict(msg, a=lengths)
    return b"".join(encode_frame(json.dumps(msg).encode(), list(attachments), lengths))


def raw(total: int, header: bytes, body: bytes = b"") -> bytes:
    return struct.pack(">II", total, len(header)) + header + body


class FramingTest(unittest.TestCase):
    def test_layout_matches_the_protocol_doc(self):
        data = frame({"k": "call"}, [b"abc", b"de"])
        header = json.dumps({"k": "call", "a": [3, 2]}).encode()
        self.assertEqual(data[:8], struct.pack(">II", 4 + len(header) + 5, len(header)))
        self.assertEqual(data[8 : 8 + len(header)], header)
        self.assertEqual(data[8 + len(header) :], b"abcde")

    def test_round_trip_with_attachments(self):
        msgs = FrameDecoder().feed(frame({"k": "result", "id": 1}, [b"\x00\x01", b"", b"xyz"]))
        self.assertEqual(msgs, [({"k": "result", "id": 1, "a": [2, 0, 3]}, [b"\x00\x01", b"", b"xyz"])])

    def test_byte_by_byte_chunks(self):
        data = frame({"k": "call", "args": ["é" * 10]}, [b"payload"])
        decoder = FrameDecoder()
        out = []
        for i in range(len(data)):
            out += decoder.feed(data[i : i + 1])
        self.assertEqual(out, [({"k": "call", "args": ["é" * 10], "a": [7]}, [b"payload"])])

    def test_merged_frames_and_a_partial_tail(self):
        data = frame({"n": 1}) + frame({"n": 2}, [b"x"]) + frame({"n": 3})
        decoder = FrameDecoder()
        first = decoder.feed(data[:-3])
        self.assertEqual([m["n"] for m, _ in first], [1, 2])
        self.assertEqual([m["n"] for m, _ in decoder.feed(data[-3:])], [3])

    def test_oversized_frame_is_rejected_before_it_arrives(self):
        with self.assertRaisesRegex(ProtocolError, "exceeds the limit of 100 bytes"):
            FrameDecoder(max_frame_bytes=100).feed(struct.pack(">II", 101, 2))

    def test_header_longer_than_frame(self):
        with self.assertRaisesRegex(ProtocolError, "does not fit"):
            FrameDecoder().feed(struct.pack(">II", 5, 2) + b"{}")

    def test_attachment_lengths_must_add_up(self):
        header = b'{"a":[4]}'
        with self.assertRaisesRegex(ProtocolError, "add up to 4 bytes but the frame carries 3"):
            FrameDecoder().feed(raw(4 + len(header) + 3, header, b"abc"))

    def test_trailing_bytes_without_lengths(self):
        with self.assertRaisesRegex(ProtocolError, "trailing bytes"):
            FrameDecoder().feed(raw(4 + 2 + 1, b"{}", b"z"))

    def test_bad_lengths_field(self):
        header = b'{"a":[-1]}'
        with self.assertRaisesRegex(ProtocolError, "non-negative integers"):
            FrameDecoder().feed(raw(4 + len(header), header))

    def test_header_must_be_a_json_object(self):
        with self.assertRaisesRegex(ProtocolError, "not valid JSON"):
            FrameDecoder().feed(raw(4 + 3, b"{x}"))
        with self.assertRaisesRegex(ProtocolError, "not a JSON object"):
            FrameDecoder().feed(raw(4 + 2, b"[]"))
        with self.assertRaisesRegex(ProtocolError, "not valid JSON"):
            FrameDecoder().feed(raw(4 + 3, b"\xff\xfe\x00"))


if __name__ == "__main__":
    unittest.main()
