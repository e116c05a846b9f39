"""The public surface: exported names, compatibility import paths, errors, singleton rules."""

import asyncio
import builtins
import unittest

import pyisolate
from pyisolate import ExtensionBase, ProxiedSingleton, RemoteError, local_execution
from pyisolate._guest.errors import error_from_wire, error_to_wire
from pyisolate._guest.extension import FRAMEWORK_NAMES, public_methods


class ApiTest(unittest.TestCase):
    def test_exported_names_are_pinned(self):
        self.assertEqual(
            sorted(pyisolate.__all__),
            sorted(
                [
                    "ExtensionBase",
                    "ExtensionLocal",
                    "ProxiedSingleton",
                    "ServiceStream",
                    "SingletonMetaclass",
                    "local_execution",
                    "RemoteError",
                    "shared_empty",
                    "SealedNodeExtension",
                    "singleton_scope",
                    "flush_tensor_keeper",
                    "purge_orphan_sender_shm_files",
                    "register_adapter",
                    "get_adapter",
                ]
            ),
        )
        self.assertEqual(pyisolate.__version__, "0.1.0")

    def test_pyisolate_shared_import_path(self):
        from pyisolate.shared import ExtensionBase as Shared

        self.assertIs(Shared, ExtensionBase)

    def test_framework_names(self):
        self.assertEqual(
            FRAMEWORK_NAMES,
            {
                "before_module_loaded",
                "on_module_loaded",
                "stop",
                "emit_event",
                "register_callee",
                "create_caller",
                "use_remote",
            },
        )

        class Ext(ExtensionBase):
            limit = 3

            def a(self):
                pass

            async def b(self):
                pass

            def _c(self):
                pass

            async def stop(self):  # an override is still the framework's hook
                pass

        self.assertEqual(public_methods(Ext()), ["a", "b"])

    def test_no_host_no_calls(self):
        class Lonely(ProxiedSingleton):
            async def ping(self):
                return "local pong"

            @local_execution
            def here(self):
                return "here"

        self.assertEqual(Lonely().here(), "here")
        # No host provides it: an ordinary local singleton (pyisolate 0.10 does the same; test_compat_guest.py).
        self.assertEqual(asyncio.run(Lonely().ping()), "local pong")
        with self.assertRaisesRegex(RuntimeError, "not connected to a host"):
            ExtensionBase().emit_event("x", 1)

    def test_create_caller_checks_names(self):
        class Api:
            async def get(self, key):
                pass

            @local_execution
            def label(self):
                return "local"

        caller = ExtensionBase().create_caller(Api, "api")
        self.assertEqual(caller.label(), "local")
        with self.assertRaises(AttributeError):
            caller.missing
        with self.assertRaises(AttributeError):
            caller._private
        with self.assertRaisesRegex(RuntimeError, "not connected to a host"):
            caller.get(key=1)  # keyword arguments are sent (test_kwargs.py); here no host is there


class ErrorsTest(unittest.TestCase):
    def test_to_wire(self):
        try:
            raise KeyError("k")
        except KeyError as e:
            wire = error_to_wire(e)
        self.assertEqual((wire["type"], wire["module"], wire["message"]), ("KeyError", "builtins", "'k'"))
        self.assertIn('raise KeyError("k")', wire["traceback"])

    def test_builtins_keep_their_type(self):
        for name in (
            "ValueError",
            "TypeError",
            "LookupError",
            "KeyError",
            "AttributeError",
            "ZeroDivisionError",
            "TimeoutError",
        ):
            exc = error_from_wire({"type": name, "message": "m", "traceback": "at host.ts:1"})
            self.assertIs(type(exc), getattr(builtins, name))
            self.assertEqual(exc.remote_traceback, "at host.ts:1")
            self.assertEqual(exc.remote_type, name)

    def test_others_become_remote_errors(self):
        for name in ("Error", "CustomError", "SystemExit", "KeyboardInterrupt", "UnicodeDecodeError", "print"):
            exc = error_from_wire({"type": name, "message": "m", "traceback": "tb"})
            self.assertIs(type(exc), RemoteError, name)
            self.assertEqual(str(exc), f"{name}: m")
            self.assertEqual(exc.remote_message, "m")
        exc = error_from_wire("not an object")
        self.assertIsInstance(exc, RemoteError)


if __name__ == "__main__":
    unittest.main()
