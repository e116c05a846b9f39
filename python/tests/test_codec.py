"""Values: every tag both ways, nesting, the x flag, and refusals with clear messages."""

import collections
import enum
import math
import unittest

from pyisolate._guest.codec import MAX_SAFE_INT, Decoder, Encoder, dumps


class Color(enum.IntEnum):
    RED = 1


def encode(value, exported=None):
    exported = [] if exported is None else exported

    def export(fn):
        exported.append(fn)
        return len(exported)

    enc = Encoder(export)
    return enc.encode(value), enc.attachments, enc.tagged


def decode(value, attachments=(), imported=None):
    imported = [] if imported is None else imported

    def import_fn(fn_id):
        imported.append(fn_id)
        return ("proxy", fn_id)

    return Decoder(list(attachments), import_fn).decode(value)


class EncodeTest(unittest.TestCase):
    def test_plain_json_is_untagged(self):
        value = {"a": [1, 2.5, "s", None, True], "b": {"c": MAX_SAFE_INT}}
        self.assertEqual(encode(value), (value, [], False))

    def test_tuples_become_lists(self):
        Point = collections.namedtuple("Point", "x y")
        self.assertEqual(encode((1, (2, Point(3, 4))))[0], [1, [2, [3, 4]]])

    def test_bytes_like_become_attachments(self):
        out, atts, tagged = encode([b"ab", bytearray(b"cd"), memoryview(b"ef")])
        self.assertEqual(out, [{"$bytes": 0}, {"$bytes": 1}, {"$bytes": 2}])
        self.assertEqual(atts, [b"ab", b"cd", b"ef"])
        self.assertTrue(tagged)

    def test_big_ints(self):
        self.assertEqual(encode(MAX_SAFE_INT + 1)[0], {"$int": str(MAX_SAFE_INT + 1)})
        self.assertEqual(encode(-(2**70))[0], {"$int": str(-(2**70))})
        self.assertEqual(encode(-MAX_SAFE_INT), (-MAX_SAFE_INT, [], False))

    def test_non_finite_floats(self):
        out = encode([math.nan, math.inf, -math.inf])[0]
        self.assertEqual(out, [{"$float": "nan"}, {"$float": "inf"}, {"$float": "-inf"}])

    def test_callables_are_exported(self):
        def f():
            pass

        exported = []
        out = encode([f, len, "x".upper, lambda: 1], exported)[0]
        self.assertEqual(out, [{"$fn": 1}, {"$fn": 2}, {"$fn": 3}, {"$fn": 4}])
        self.assertIs(exported[0], f)

    def test_maps(self):
        self.assertEqual(encode({1: "a", (2, 3): "b"})[0], {"$map": [[1, "a"], [[2, 3], "b"]]})
        self.assertEqual(encode({"$bytes": 1})[0], {"$map": [["$bytes", 1]]})
        self.assertEqual(encode({"$a": 1, "$b": 2}), ({"$a": 1, "$b": 2}, [], False))

    def test_subclasses_are_plain_values(self):
        self.assertEqual(encode([Color.RED, collections.OrderedDict(a=1)])[0], [1, {"a": 1}])
        self.assertIs(type(encode(Color.RED)[0]), int)

    def test_refusals_name_the_type(self):
        for value, name in [
            ({1, 2}, "set"),
            (object(), "object"),
            (int, "type"),
            ([1, {"k": complex(1, 2)}], "complex"),
        ]:
            with self.assertRaises(TypeError) as cm:
                encode(value)
            self.assertEqual(str(cm.exception), f"cannot send value of type '{name}' to the host")

    def test_dumps_is_compact_utf8(self):
        self.assertEqual(dumps({"k": "é", "n": [1, 2]}), '{"k":"é","n":[1,2]}'.encode())
        self.assertEqual(dumps({"s": "\udcff"}), b'{"s":"\\udcff"}')  # lone surrogate: escaped
        with self.assertRaises(ValueError):
            dumps({"f": math.nan})  # tags, never NaN tokens


class DecodeTest(unittest.TestCase):
    def test_untagged_values_pass_through(self):
        self.assertEqual(decode({"a": [1, {"b": "c"}]}), {"a": [1, {"b": "c"}]})

    def test_every_tag(self):
        imported = []
        value = [
            {"$bytes": 1},
            {"$int": "-9007199254740993"},
            {"$float": "-inf"},
            {"$fn": 7},
            {"$map": [[1, "one"], [[1, [2]], "tuple"], ["$x", {"$int": "12345678901234567890"}]]},
        ]
        out = decode(value, [b"zero", b"one"], imported)
        self.assertEqual(out[0], b"one")
        self.assertEqual(out[1], -9007199254740993)
        self.assertEqual(out[2], -math.inf)
        self.assertEqual(out[3], ("proxy", 7))
        self.assertEqual(out[4], {1: "one", (1, (2,)): "tuple", "$x": 12345678901234567890})
        self.assertEqual(imported, [7])
        self.assertTrue(math.isnan(decode({"$float": "nan"})))

    def test_round_trip_nested(self):
        value = {"deep": [[{"b": b"\x00" * 3, 5: [math.inf, 2**60]}]], "$": 1}
        out, atts, tagged = encode(value)
        self.assertTrue(tagged)
        self.assertEqual(decode(out, atts), value)

    def test_bad_tags(self):
        for value, message in [
            ({"$nope": 1}, "unknown tag"),
            ({"$bytes": 3}, "missing attachment"),
            ({"$fn": "x"}, "positive integer"),
            ({"$float": "1.5"}, "nan, inf"),
            ({"$int": 5}, "decimal string"),
            ({"$map": [[1]]}, "pairs"),
            ({"$map": [[{"a": 1}, 2]]}, "cannot key"),
        ]:
            with self.assertRaisesRegex(ValueError, message):
                decode(value)


if __name__ == "__main__":
    unittest.main()
