"""Dataclasses travel as the dict of their fields: the shape `pyisolate types` gives them on the host."""

import dataclasses
import unittest

from pyisolate._guest.codec import Encoder


@dataclasses.dataclass
class Point:
    x: float
    label: str = "p"
    tags: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Callable:
    n: int

    def __call__(self):
        return self.n


def encode(value):
    exported = []
    enc = Encoder(lambda fn: exported.append(fn) or len(exported))
    return enc.encode(value), enc.attachments, exported


class DataclassEncodeTest(unittest.TestCase):
    def test_a_dataclass_is_the_dict_of_its_fields_nested_values_included(self):
        value, attachments, _ = encode([Point(1.5, tags=[Point(2.0, "q")]), b"\x01"])
        self.assertEqual(value[0], {"x": 1.5, "label": "p", "tags": [{"x": 2.0, "label": "q", "tags": []}]})
        self.assertEqual(attachments, [b"\x01"])

    def test_a_callable_dataclass_still_travels_as_its_fields_not_as_a_function(self):
        value, _, exported = encode(Callable(3))
        self.assertEqual((value, exported), ({"n": 3}, []))

    def test_a_dataclass_class_itself_is_still_refused(self):
        with self.assertRaisesRegex(TypeError, "cannot send value of type 'type'"):
            encode(Point)


if __name__ == "__main__":
    unittest.main()
