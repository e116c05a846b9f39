"""The shared sample frames (test/vectors/frames.json, written by the host suite), both ways."""

import json
import os
import unittest
from unittest import mock

from pyisolate._guest import segments
from pyisolate._guest.codec import Decoder, dumps
from pyisolate._guest.framing import FrameDecoder, ProtocolError, encode_frame
from pyisolate._guest.messages import check_message
from pyisolate._guest.outbox import Outbox

from .peers import CaptureTransport

try:
    import numpy
except ImportError:
    numpy = None

VECTORS = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "test", "vectors", "frames.json"))
VALUE_FIELDS = ("args", "value", "payload")


def _load():
    if not os.path.exists(VECTORS):
        raise unittest.SkipTest(f"{VECTORS} does not exist yet (the host suite writes it)")
    with open(VECTORS, encoding="utf-8") as f:
        return json.load(f)


def _frame(name):
    entry = next(e for e in _load() if e["name"] == name)
    [(msg, attachments)] = FrameDecoder().feed(bytes.fromhex(entry["hex"]))
    return msg, attachments


def _no_callables(fn_id):
    return lambda *a: None


class VectorsTest(unittest.TestCase):
    def test_decode_matches_the_listed_header_and_attachments(self):
        for entry in _load():
            with self.subTest(entry["name"]):
                [(msg, attachments)] = FrameDecoder().feed(bytes.fromhex(entry["hex"]))
                self.assertEqual(msg, entry["header"])
                self.assertEqual([a.hex() for a in attachments], entry["attachmentsHex"])

    def test_the_decoded_header_reframes_bit_exact(self):
        for entry in _load():
            with self.subTest(entry["name"]):
                [(msg, attachments)] = FrameDecoder().feed(bytes.fromhex(entry["hex"]))
                chunks = encode_frame(dumps(msg), attachments, msg.get("a", ()))
                self.assertEqual(b"".join(bytes(c) for c in chunks).hex(), entry["hex"])

    def test_our_encoder_writes_the_same_bytes(self):
        for entry in _load():
            with self.subTest(entry["name"]):
                [(msg, attachments)] = FrameDecoder().feed(bytes.fromhex(entry["hex"]))
                if "f" in msg or entry["name"] == "result_tensor_kept":
                    # A shm tensor names a live segment (its fd or a kept id): only the header re-encodes (above).
                    continue
                if '"$iter"' in json.dumps(msg):
                    continue  # only the host sends streams ($iter); the guest reads them (StreamVectorsTest)
                if numpy is None and '"$tensor"' in json.dumps(msg):
                    self.skipTest("numpy is not installed: tensors cannot be decoded and re-encoded")
                head = {k: v for k, v in msg.items() if k not in ("x", "a")}
                field = next((f for f in VALUE_FIELDS if f in head), None)
                value = kw = None
                if field is not None:
                    value = head.pop(field)
                    kw = head.pop("kw", None)  # a call's keyword arguments: decoded and encoded with its args
                    if "x" in msg:
                        decoder = Decoder(attachments, lambda fn_id: lambda *a: None)
                        value = decoder.decode(value)
                        kw = decoder.decode(kw)
                transport = CaptureTransport()
                out = Outbox(transport, 1 << 30)  # a fresh export table numbers callables from 1
                out.send(head, field, value, kw)
                self.assertEqual(transport.data.hex(), entry["hex"])


class KeywordVectorsTest(unittest.TestCase):
    def test_call_kw_decodes_with_its_args(self):
        msg, attachments = _frame("call_kw_plain")
        self.assertEqual((msg["args"], msg["kw"], "x" in msg), ([[1, 2, 3]], {"axis": 0, "keepdims": True}, False))
        msg, attachments = _frame("call_kw")
        self.assertEqual(msg["a"], [2, 3])  # args' bytes first, then kw's
        decoder = Decoder(attachments, _no_callables)
        self.assertEqual(decoder.decode(msg["args"]), [b"ab"])
        self.assertEqual(
            decoder.decode(msg["kw"]),
            {"axis": 0, "weights": b"xyz", "big": 2**64, "opts": {"names": ["a", "\u00e9"], "none": None}},
        )


class StreamVectorsTest(unittest.TestCase):
    def test_stream_call_item_and_credit_pass_the_message_check(self):
        call, _ = _frame("call_stream")
        self.assertEqual((check_message(call), call["stream"], call["args"]), ("call", 16, ["hi"]))
        item, attachments = _frame("item")
        self.assertEqual(check_message(item), "item")
        self.assertEqual(
            Decoder(attachments, _no_callables).decode(item["value"]), {"token": "h\u00e9", "raw": b"\x01\x02"}
        )
        credit, _ = _frame("credit")
        self.assertEqual((check_message(credit), credit["n"]), ("credit", 8))

    def test_a_host_iterable_arrives_as_what_import_stream_makes(self):
        msg, attachments = _frame("call_iter")
        self.assertEqual(msg["args"], [{"$iter": 1}])
        made = []
        decoder = Decoder(attachments, _no_callables, None, lambda stream_id: made.append(stream_id) or "stream")
        self.assertEqual(decoder.decode(msg["args"]), ["stream"])
        self.assertEqual(made, [1])
        with self.assertRaisesRegex(ValueError, "cannot be received here"):
            Decoder(attachments, _no_callables).decode(msg["args"])
        with self.assertRaisesRegex(ValueError, r"\$iter id must be a positive integer"):
            Decoder([], _no_callables, None, lambda i: i).decode({"$iter": "1"})


@unittest.skipIf(numpy is None, "numpy is not installed")
class TensorVectorsTest(unittest.TestCase):
    def test_copy_mode_tensors_arrive_from_attachments(self):
        msg, attachments = _frame("result_tensor_copy")
        value = Decoder(attachments, _no_callables).decode(msg["value"])
        self.assertEqual(value["label"], "cat")
        image, mask = value["image"], value["mask"]
        self.assertIsInstance(image, numpy.ndarray)
        self.assertEqual((image.dtype.name, image.shape), ("float32", (3, 2)))
        # The host's transposed 2x3 view of 0..5, compacted to C order.
        self.assertEqual(image.tolist(), [[0, 3], [1, 4], [2, 5]])
        self.assertEqual((mask.dtype.name, mask.tolist()), ("uint8", [1, 0, 0, 255]))

    def test_shm_mode_tensor_maps_the_fd_that_came_with_the_frame(self):
        msg, attachments = _frame("result_tensor_shm")
        self.assertEqual(msg["f"], 1)
        # What the host would have passed on the fd socket: 24 bytes holding float32 0..5.
        fd = os.memfd_create("pyisolate-vector")
        os.write(fd, numpy.arange(6, dtype=numpy.float32).tobytes())
        decoder = Decoder(attachments, _no_callables, [fd])
        try:
            arr = decoder.decode(msg["value"])
        finally:
            decoder.close()
        # Fortran order (strides [1, 2] elements): element [i][j] sits at i + 2j.
        self.assertEqual((arr.dtype.name, arr.shape, arr.strides), ("float32", (2, 3), (4, 8)))
        self.assertEqual(arr.tolist(), [[0, 2, 4], [1, 3, 5]])

    def test_kept_tensor_comes_without_fd_and_needs_the_segment_kept(self):
        msg, attachments = _frame("result_tensor_kept")
        self.assertNotIn("f", msg)
        self.assertEqual(msg["value"]["$tensor"]["storage"], {"kind": "shm", "size": 24, "id": 4242})
        # Not kept here: the documented refusal (a ValueError the peer answers as a protocol error).
        with self.assertRaisesRegex(ValueError, "segment 4242 without an fd, and none such is kept here"):
            Decoder(attachments, _no_callables).decode(msg["value"])
        # Kept as 4242 (a real one is keyed by its inode, which a vector cannot fix): the view is over it.
        seg = segments.allocate(24)
        seg[:] = numpy.arange(6, dtype=numpy.float32).tobytes()
        with mock.patch.dict(segments._kept, {4242: seg}):
            arr = Decoder(attachments, _no_callables).decode(msg["value"])
        self.assertEqual((arr.dtype.name, arr.shape, arr.strides), ("float32", (2, 3), (4, 8)))
        self.assertEqual(arr.tolist(), [[0, 2, 4], [1, 3, 5]])
        self.assertIs(arr.base, seg)

    def test_release_carries_segment_ids(self):
        msg, _ = _frame("release_segs")
        self.assertEqual(msg, {"k": "release", "fns": [], "segs": [4242, 4243]})


class _Channel:
    """An fd channel stand-in: Outbox.frame only asks whether there is one."""

    queued = False


class _OneMemfdPool:
    """A bytes pool that lends memfd number 3 (fd 99), as the vector's guest did."""

    def lend(self, flat):
        self.data = bytes(flat)
        return 99, 3

    def returned(self, numbers):
        raise AssertionError("the frame was sent: nothing comes back here")


class LentBytesVectorsTest(unittest.TestCase):
    def test_our_encoder_writes_the_lent_bytes_frame(self):
        entry = next(e for e in _load() if e["name"] == "result_bytes_lent")
        out = Outbox(CaptureTransport(), 1 << 30)
        out.fd_channel, out.bytes_fd, out.bytes_pool = _Channel(), 1, _OneMemfdPool()
        chunks = out.frame({"k": "result", "id": 16}, "value", b"lent!!")
        self.assertEqual(b"".join(bytes(c) for c in chunks).hex(), entry["hex"])
        self.assertEqual((chunks.fds, out.bytes_pool.data), ([99], b"lent!!"))

    def test_release_hands_pooled_memfd_numbers_back_and_is_checked(self):
        msg, _ = _frame("release_bytes")
        check_message(msg)
        self.assertEqual(msg["bytes"], [3, 4])
        for bad in (["3"], [-1], 3, [True]):
            with self.subTest(bad), self.assertRaisesRegex(ProtocolError, "'bytes' must be a list"):
                check_message(dict(msg, bytes=bad))


if __name__ == "__main__":
    unittest.main()
