"""The host's frame limits in the guest's Outbox: a message past one fails here with a ValueError naming it."""

import unittest

from pyisolate._guest.outbox import Outbox
from tests.peers import CaptureTransport

LIMITS = {"maxFrameBytes": 4096, "maxHeaderBytes": 200, "maxAttachments": 3, "maxFdsPerFrame": 2}


class OutboxLimitsTest(unittest.TestCase):
    def outbox(self, limits=LIMITS):
        out = Outbox(CaptureTransport(), 1 << 30)
        out.apply_limits(limits)
        return out

    def test_a_message_within_every_limit_is_framed(self):
        chunks = self.outbox().frame({"k": "result", "id": 1}, "value", [b"a", b"b", b"c"])
        self.assertTrue(chunks)

    def test_one_attachment_too_many_names_max_attachments(self):
        with self.assertRaisesRegex(ValueError, r"message attachments: 4 exceeds the host's limit maxAttachments = 3"):
            self.outbox().frame({"k": "result", "id": 1}, "value", [b"a", b"b", b"c", b"d"])

    def test_a_header_past_the_limit_names_max_header_bytes(self):
        with self.assertRaisesRegex(
            ValueError, r"message header bytes: \d+ exceeds the host's limit maxHeaderBytes = 200"
        ):
            self.outbox().frame({"k": "result", "id": 1}, "value", "x" * 300)

    def test_a_frame_past_the_limit_names_max_frame_bytes(self):
        with self.assertRaisesRegex(ValueError, r"exceeds the frame limit of 4096 bytes \(host limit maxFrameBytes\)"):
            self.outbox().frame({"k": "result", "id": 1}, "value", b"x" * 5000)

    def test_without_limits_from_the_host_only_the_frame_size_is_checked(self):
        out = self.outbox(None)
        self.assertTrue(out.frame({"k": "result", "id": 1}, "value", [b"a"] * 100))
        malformed = self.outbox({"maxHeaderBytes": "big", "maxFrameBytes": -1})
        self.assertTrue(malformed.frame({"k": "result", "id": 1}, "value", "x" * 300))


if __name__ == "__main__":
    unittest.main()
