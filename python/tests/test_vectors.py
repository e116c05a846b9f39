"""The shared sample frames (test/vectors/frames.json, written by the host suite), both ways."""

import json
import os
import unittest

from pyisolate._guest.codec import Decoder
from pyisolate._guest.framing import FrameDecoder
from pyisolate._guest.outbox import Outbox

VECTORS = os.path.normpath(
    os.path.join(os.path.dirname(__file__), "..", "..", "test", "vectors", "frames.json"))
VALUE_FIELDS = ("args", "value", "payload")


class _Capture:
    """A transport that keeps what is written."""

    def __init__(self):
        self.data = b""

    def write(self, chunk):
        self.data += bytes(chunk)

    def get_write_buffer_size(self):
        return 0


def _load():
    if not os.path.exists(VECTORS):
        raise unittest.SkipTest(f"{VECTORS} does not exist yet (the host suite writes it)")
    with open(VECTORS, encoding="utf-8") as f:
        return json.load(f)


class VectorsTest(unittest.TestCase):
    def test_decode_matches_the_listed_header_and_attachments(self):
        for entry in _load():
            with self.subTest(entry["name"]):
                [(msg, attachments)] = FrameDecoder().feed(bytes.fromhex(entry["hex"]))
                self.assertEqual(msg, entry["header"])
                self.assertEqual([a.hex() for a in attachments], entry["attachmentsHex"])

    def test_our_encoder_writes_the_same_bytes(self):
        for entry in _load():
            with self.subTest(entry["name"]):
                [(msg, attachments)] = FrameDecoder().feed(bytes.fromhex(entry["hex"]))
                head = {k: v for k, v in msg.items() if k not in ("x", "a")}
                field = next((f for f in VALUE_FIELDS if f in head), None)
                value = None
                if field is not None:
                    value = head.pop(field)
                    if "x" in msg:
                        value = Decoder(attachments, lambda fn_id: (lambda *a: None)).decode(value)
                transport = _Capture()
                out = Outbox(transport, 1 << 30)  # a fresh export table numbers callables from 1
                out.send(head, field, value)
                self.assertEqual(transport.data.hex(), entry["hex"])


if __name__ == "__main__":
    unittest.main()
