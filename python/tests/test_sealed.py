"""SealedNodeExtension and object handles, in process: node listing, execution, handles both ways."""

import asyncio
import json
import threading
import types
import unittest

from pyisolate import SealedNodeExtension
from pyisolate._guest.codec import Decoder, Encoder, dumps
from pyisolate._guest.handles import HANDLE_KEY, HandleTable, is_handle
from pyisolate._guest.sealed import plain


class Box:
    def __init__(self, v):
        self.v = v


def _over_the_wire(value):
    """Encode as the guest sends and decode as it receives: what comes back from the host unchanged."""
    enc = Encoder(lambda fn: 1)
    header = json.loads(dumps({"value": enc.encode(value)}))
    return Decoder(enc.attachments, lambda i: None).decode(header["value"])


class HandleTableTest(unittest.TestCase):
    def test_unsendable_leaves_become_handles_and_come_back(self):
        table = HandleTable()
        box = Box(1)
        wrapped = table.wrap({"box": box, "list": [1, "a", (box, None)], "n": 2.5, "b": b"x"})
        handle = wrapped["box"]
        self.assertEqual(set(handle), {HANDLE_KEY, "type"})
        self.assertEqual(handle["type"], "Box")
        self.assertEqual(wrapped["list"][:2], [1, "a"])
        self.assertTrue(is_handle(wrapped["list"][2][0]))
        self.assertEqual((wrapped["n"], wrapped["b"]), (2.5, b"x"))
        back = table.resolve(_over_the_wire(wrapped))
        self.assertIs(back["box"], box)
        self.assertIs(back["list"][2][0], box)
        self.assertEqual(len(table), 2, "one handle per appearance")

    def test_callables_and_odd_dicts_are_kept_too(self):
        table = HandleTable()
        self.assertTrue(is_handle(table.wrap(len)))
        self.assertTrue(is_handle(table.wrap({Box(1): 1})))
        self.assertEqual(table.wrap({1: "a", None: 2}), {1: "a", None: 2})
        self.assertEqual(len(table), 2)

    def test_numpy_arrays_travel_object_arrays_do_not(self):
        try:
            import numpy as np
        except ImportError:
            self.skipTest("numpy is not installed")
        table = HandleTable()
        a = np.arange(3, dtype=np.float32)
        self.assertIs(table.wrap(a), a)
        self.assertEqual(table.wrap(np.float64(1.5)), 1.5)
        self.assertTrue(is_handle(table.wrap(np.array([Box(1)], dtype=object))))

    def test_unknown_or_foreign_handles_are_key_errors(self):
        mine, theirs = HandleTable(), HandleTable()
        foreign = theirs.wrap(Box(1))
        with self.assertRaisesRegex(KeyError, "unknown here"):
            mine.resolve({"x": foreign})
        handle = mine.wrap(Box(2))
        self.assertEqual(mine.get(handle[HANDLE_KEY]).v, 2)
        self.assertEqual(mine.clear(), 1)
        with self.assertRaisesRegex(KeyError, "flush_transport_state"):
            mine.get(handle)
        with self.assertRaises(KeyError):
            mine.get(["not", "hashable"])

    def test_dicts_that_only_look_alike_are_left_alone(self):
        table = HandleTable()
        lookalike = {HANDLE_KEY: "x", "type": "T", "extra": 1}
        self.assertEqual(table.resolve(lookalike), lookalike)


class Add:
    CATEGORY = "math"
    FUNCTION = "add"
    RETURN_TYPES = ("INT",)
    RETURN_NAMES = ("sum",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"a": ("INT", {"default": 1}), "b": (int,)}, "hidden": {"x": Box(1)}}

    def add(self, a, b, node_name=None):
        return a + b, threading.current_thread() is threading.main_thread(), node_name


class Wrap:
    FUNCTION = "run"
    INPUT_IS_LIST = True
    OUTPUT_IS_LIST = (True,)

    async def run(self, items, box):
        return [len(items), box[0]]


def _extension(**mappings):
    ext = SealedNodeExtension()
    module = types.ModuleType("pack")
    for k, v in mappings.items():
        setattr(module, k, v)
    asyncio.run(ext.on_module_loaded(module))
    return ext


class SealedTest(unittest.TestCase):
    def test_listing_and_details(self):
        ext = _extension(NODE_CLASS_MAPPINGS={"Add": Add, "Wrap": Wrap}, NODE_DISPLAY_NAME_MAPPINGS={"Add": "Add ints"})
        self.assertEqual(asyncio.run(ext.list_nodes()), {"Add": "Add ints", "Wrap": "Wrap"})
        details = asyncio.run(ext.get_node_details("Add"))
        self.assertEqual(details["input_types"]["required"], {"a": ["INT", {"default": 1}], "b": ["int"]})
        self.assertIsInstance(details["input_types"]["hidden"]["x"], str)
        self.assertEqual(
            {k: v for k, v in details.items() if k != "input_types"},
            {
                "return_types": ["INT"],
                "return_names": ["sum"],
                "function": "add",
                "category": "math",
                "output_node": False,
                "output_is_list": None,
                "is_v3": False,
            },
        )
        self.assertEqual(asyncio.run(ext.get_node_info("Wrap"))["output_is_list"], [True])
        self.assertEqual(asyncio.run(ext.get_input_types("Wrap")), {})
        with self.assertRaisesRegex(KeyError, "Nope"):
            asyncio.run(ext.get_node_details("Nope"))

    def test_execute_runs_sync_in_a_thread_wraps_lists_and_makes_tuples(self):
        ext = _extension(NODE_CLASS_MAPPINGS={"Add": Add, "Wrap": Wrap})
        total, on_main, name = asyncio.run(ext.execute_node("Add", a=2, b=3, node_name="input"))
        self.assertEqual((total, on_main, name), (5, False, "input"), "an input may be called node_name")
        (out,) = asyncio.run(ext.execute_node("Wrap", items=["a", "b"], box=Box(7)))
        self.assertEqual(out[0], 2)
        self.assertTrue(is_handle(out[1]))
        self.assertEqual(asyncio.run(ext.get_remote_object(out[1])).v, 7)
        self.assertEqual(asyncio.run(ext.flush_transport_state()), 0)
        with self.assertRaises(KeyError):
            asyncio.run(ext.get_remote_object(out[1][HANDLE_KEY]))
        with self.assertRaises(KeyError):
            asyncio.run(ext.execute_node("Nope"))

    def test_mappings_must_be_dicts(self):
        with self.assertRaisesRegex(TypeError, "NODE_CLASS_MAPPINGS must be a dict"):
            _extension(NODE_CLASS_MAPPINGS=[Add])
        self.assertEqual(asyncio.run(_extension().list_nodes()), {})

    def test_plain(self):
        self.assertEqual(plain({1: (float, None, [True])}), {"1": ["float", None, [True]]})


if __name__ == "__main__":
    unittest.main()
