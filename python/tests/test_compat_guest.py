"""pyisolate 0.10's runtime semantics in our guest: local singletons, nested singletons, TensorValue, module names."""

import asyncio
import os
import shutil
import struct
import sys
import tempfile
import unittest

import pyisolate
from pyisolate import ProxiedSingleton, local_execution, singleton_scope
from pyisolate._guest import context, loader, tensor_value
from pyisolate._guest.codec import Decoder, Encoder
from pyisolate._guest.targets import Targets


class _Peer:
    """What the singletons ask of the connected peer: the host's services, and calls (recorded)."""

    def __init__(self, services):
        self.services = services
        self.calls = []

    def call(self, target, method, args, kwargs=None):
        self.calls.append((target, method, list(args)))

        async def answer():
            return f"{target}.{method} from the host"

        return answer()


class Inner(ProxiedSingleton):
    async def where(self):
        return "inner, local"


class Outer(ProxiedSingleton):
    inner: Inner
    _private: Inner  # never injected: private, as in pyisolate

    async def where(self):
        return "outer, local"

    @local_execution
    def here(self):
        return "always here"


class SingletonTest(unittest.TestCase):
    def connected(self, services):
        peer = _Peer(services)
        context.set_peer(peer)
        self.addCleanup(context.set_peer, None)
        scope = singleton_scope()
        scope.__enter__()
        self.addCleanup(scope.__exit__, None, None, None)
        return peer

    def test_a_singleton_the_host_does_not_provide_runs_locally(self):
        peer = self.connected(frozenset({"Other"}))
        self.assertEqual(asyncio.run(Outer().where()), "outer, local")
        self.assertEqual(peer.calls, [])
        self.assertFalse(hasattr(Outer(), "inner"), "a local singleton gets no injected attributes")

    def test_a_provided_singleton_calls_the_host_and_its_hinted_attribute_is_injected(self):
        peer = self.connected(frozenset({"Outer", "Inner"}))
        outer = Outer()
        self.assertEqual(asyncio.run(outer.where()), "Outer.where from the host")
        self.assertIs(outer.inner, Inner())
        self.assertEqual(asyncio.run(outer.inner.where()), "Inner.where from the host")
        self.assertFalse(hasattr(outer, "_private"))
        self.assertEqual(outer.here(), "always here")
        self.assertEqual(peer.calls, [("Outer", "where", []), ("Inner", "where", [])])

    def test_the_nested_singleton_is_local_when_only_the_outer_one_is_provided(self):
        self.connected(frozenset({"Outer"}))
        self.assertEqual(asyncio.run(Outer().inner.where()), "inner, local")

    def test_a_peer_never_told_the_services_keeps_every_singleton_remote(self):
        peer = self.connected(None)
        self.assertEqual(asyncio.run(Outer().where()), "Outer.where from the host")
        self.assertEqual(peer.calls[0][:2], ("Outer", "where"))

    def test_use_remote_makes_an_unprovided_singleton_remote_and_refuses_after_a_local_instance(self):
        peer = self.connected(frozenset())

        class Forced(ProxiedSingleton):
            async def ping(self):
                return "local"

        pyisolate.ExtensionBase().use_remote(Forced)
        self.assertEqual(asyncio.run(Forced().ping()), "Forced.ping from the host")
        self.assertEqual(len(peer.calls), 1)

        class Late(ProxiedSingleton):
            async def ping(self):
                return "local"

        Late()
        with self.assertRaisesRegex(RuntimeError, "already has a local instance"):
            pyisolate.ExtensionBase().use_remote(Late)


class TargetsTest(unittest.TestCase):
    def test_the_same_object_may_register_twice_another_may_not(self):
        targets, ext = Targets(), object()
        targets.register("extension", ext, ("stop",))
        targets.register("extension", ext)
        with self.assertRaisesRegex(AttributeError, "not a public method"):
            targets.method("extension", "stop")  # still hidden after the second registration
        with self.assertRaisesRegex(ValueError, "already registered"):
            targets.register("extension", object())


class TensorValueTest(unittest.TestCase):
    def test_a_descriptor_becomes_pyisolates_dict_form_strides_and_offset_honoured(self):
        buf = bytearray(struct.pack("<6f", 0, 1, 2, 3, 4, 5))
        desc = {"dtype": "float32", "shape": [2, 2], "strides": [1, 2], "offset": 1, "requiresGrad": True}
        self.assertEqual(
            tensor_value.from_buffer(desc, buf),
            {
                "__type__": "TensorValue",
                "dtype": "torch.float32",
                "tensor_size": [2, 2],
                "requires_grad": True,
                "data": [[1.0, 3.0], [2.0, 4.0]],
            },
        )

    def test_bfloat16_int64_bool_and_complex_read_and_write_back_exactly(self):
        for dtype, values, raw in (
            ("bfloat16", [1.0, -2.5], struct.pack("<2H", 0x3F80, 0xC020)),
            ("int64", [-(2**40), 7], struct.pack("<2q", -(2**40), 7)),
            ("bool", [True, False], b"\x01\x00"),
            ("complex64", [1 + 2j, -3j], struct.pack("<4f", 1, 2, 0, -3)),
        ):
            desc = {"dtype": dtype, "shape": [2], "strides": [1], "offset": 0}
            value = tensor_value.from_buffer(desc, bytearray(raw))
            self.assertEqual(value["data"], values, dtype)
            enc = Encoder(lambda fn: 1)
            tag = enc.encode(value)["$tensor"]
            self.assertEqual((tag["dtype"], tag["shape"], tag["framework"]), (dtype, [2], "torch"))
            self.assertEqual(bytes(enc.attachments[tag["storage"]["attachment"]]), raw, dtype)

    def test_a_handmade_tensor_value_that_describes_no_tensor_is_refused(self):
        enc = Encoder(lambda fn: 1)
        bad = tensor_value.TensorValue(__type__="TensorValue", dtype="torch.float32", tensor_size=[3], data=[1.0])
        with self.assertRaisesRegex(TypeError, "1 values for tensor_size"):
            enc.encode(bad)
        with self.assertRaisesRegex(TypeError, "do not describe a tensor"):
            enc.encode(tensor_value.TensorValue(dtype="torch.quint8", tensor_size=[1], data=[1]))

    def test_a_torch_descriptor_decodes_to_numpy_or_the_dict_when_torch_is_missing(self):
        # Run where torch cannot be imported: a None entry in sys.modules makes `import torch` fail.
        saved = {name: sys.modules.get(name) for name in ("torch", "numpy")}
        self.addCleanup(
            lambda: [
                sys.modules.__setitem__(k, v) if v is not None else sys.modules.pop(k, None) for k, v in saved.items()
            ]
        )
        sys.modules["torch"] = None
        payload = {
            "dtype": "float32",
            "shape": [2],
            "strides": [1],
            "offset": 0,
            "framework": "torch",
            "storage": {"kind": "bytes", "attachment": 0},
        }
        attachments = [struct.pack("<2f", 1.5, 2.5)]
        try:
            import numpy  # noqa: F401

            has_numpy = True
        except ImportError:
            has_numpy = False
        value = Decoder(list(attachments), None).decode({"$tensor": payload})
        if has_numpy:
            self.assertEqual(type(value).__module__, "numpy")
            self.assertEqual(value.tolist(), [1.5, 2.5])
        sys.modules["numpy"] = None
        value = Decoder(list(attachments), None).decode({"$tensor": payload})
        self.assertIsInstance(value, dict)
        self.assertEqual((value["__type__"], value["data"]), ("TensorValue", [1.5, 2.5]))


class ModuleNameTest(unittest.TestCase):
    def test_folder_names_map_as_in_pyisolate(self):
        self.assertEqual(loader.module_name("my-nodes.v2"), "my_nodes_v2")
        self.assertEqual(loader.module_name("plain_pack"), "plain_pack")

    def test_a_hyphenated_folder_loads_under_the_mapped_name_and_siblings_import_absolutely(self):
        root = tempfile.mkdtemp(prefix="compat_guest_")
        self.addCleanup(shutil.rmtree, root, True)
        folder = os.path.join(root, "my-pack")
        os.mkdir(folder)
        with open(os.path.join(folder, "__init__.py"), "w") as f:
            f.write(
                "import sibling_helper\nfrom . import rel\nfrom pyisolate import ExtensionBase\n"
                "class Pack(ExtensionBase):\n    def which(self):\n        return sibling_helper.NAME + rel.NAME\n"
            )
        with open(os.path.join(folder, "sibling_helper.py"), "w") as f:
            f.write("NAME = 'sibling+'\n")
        with open(os.path.join(folder, "rel.py"), "w") as f:
            f.write("NAME = 'relative'\n")
        saved_path = list(sys.path)
        self.addCleanup(
            lambda: (
                sys.path.__setitem__(slice(None), saved_path),
                [sys.modules.pop(m) for m in list(sys.modules) if m.split(".")[0] in ("my_pack", "sibling_helper")],
            )
        )
        registered = []
        instance, module, cls = asyncio.run(loader.load_extension(folder, on_instance=registered.append))
        self.assertEqual(module.__name__, "my_pack")
        self.assertEqual(loader.class_spec(cls), "my_pack:Pack")
        self.assertEqual(instance.which(), "sibling+relative")
        self.assertEqual(registered, [instance])
        self.assertEqual(sys.path[:2], [root, folder])  # the package's parent first, then the folder itself


class ImportPathsTest(unittest.TestCase):
    def test_sealed_interfaces_and_config_import_with_the_names_extensions_use(self):
        from pyisolate.config import ExtensionConfig, SandboxConfig, SandboxMode
        from pyisolate.interfaces import IsolationAdapter, SerializerRegistryProtocol
        from pyisolate.sealed import SealedNodeExtension

        self.assertIs(SealedNodeExtension, pyisolate.SealedNodeExtension)
        self.assertIs(ExtensionConfig, pyisolate.ExtensionConfig)
        with self.assertRaisesRegex(RuntimeError, "SandboxMode belongs to the host"):
            SandboxMode.REQUIRED
        with self.assertRaisesRegex(RuntimeError, "SandboxConfig belongs to the host"):
            SandboxConfig(writable_paths=[])

        class Adapter:
            identifier = "x"

            def get_path_config(self, module_path): ...
            def setup_child_environment(self, snapshot): ...
            def register_serializers(self, registry): ...
            def provide_rpc_services(self):
                return []

            def handle_api_registration(self, api, rpc): ...

        self.assertIsInstance(Adapter(), IsolationAdapter)
        self.assertNotIsInstance(object(), SerializerRegistryProtocol)


if __name__ == "__main__":
    unittest.main()
