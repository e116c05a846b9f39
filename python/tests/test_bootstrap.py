"""The guest as a real process: handshake, calls, fatal load errors, shutdown and EOF exits."""

import asyncio
import json
import os
import struct
import sys
import unittest

from pyisolate._guest import protocol as P

from .harness import FIXTURES, Host, fixture, spawn_guest


class CounterService:
    def __init__(self):
        self.total = 0

    def add(self, n):
        self.total += n
        return self.total


class GuestProcessTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.host = Host()
        self.hello = await self.host.start()

    async def asyncTearDown(self):
        await self.host.close()

    async def ready(self, package="stats_ext", extension_class=None) -> dict:
        msg = await self.host.load(package, extension_class)
        self.assertEqual(msg["k"], "ready", msg)
        return msg

    async def fatal(self, package, extension_class=None, v=1) -> dict:
        msg = await self.host.load(package, extension_class) if v == 1 else await self._init_v(v)
        self.assertEqual(msg["k"], "fatal", msg)
        self.assertEqual(await self.host.exit_status(), 3)
        return msg["error"]

    async def _init_v(self, v):
        self.host.peer.send(
            {"k": "init", "v": v, "name": "x", "modulePath": fixture("stats_ext"), "extensionClass": None}
        )
        return await asyncio.wait_for(self.host.messages.get(), 10)

    async def test_hello(self):
        self.assertEqual(set(self.hello), {"k", "v", "runtime", "python", "pid", "batch"})
        self.assertIs(self.hello["batch"], True)
        self.assertEqual(self.hello["v"], 1)
        self.assertEqual(self.hello["pid"], self.host.proc.pid)
        self.assertEqual(self.hello["python"].split(".")[:2], [str(n) for n in sys.version_info[:2]])

    async def test_ready_calls_services_events_and_shutdown(self):
        counter = CounterService()
        self.host.peer.register("Counter", counter)
        ready = await self.ready()
        self.assertEqual(ready["extensionClass"], "stats_ext:Stats")
        self.assertIn("mean", ready["methods"])
        self.assertIn("sync_sum", ready["methods"])
        for framework in ("emit_event", "register_callee", "stop", "on_module_loaded"):
            self.assertNotIn(framework, ready["methods"])
        call = self.host.peer.call
        self.assertEqual(await call("extension", "mean", [[1, 2, 3, 4]]), 2.5)
        self.assertEqual(await call("extension", "sync_sum", [[1, 2, 3]]), 6)
        self.assertEqual(await call("extension", "bump", []), 5)
        self.assertEqual(counter.total, 5)
        self.assertEqual(await call("extension", "describe", []), "runs locally")
        self.assertEqual(await call("extension", "echo", [b"\x00" * 100000]), b"\x00" * 100000)
        self.assertEqual(await call("extension", "apply", [lambda x: x + 1, 41]), 42)
        self.assertEqual(await call("extension", "get_hooks", []), ["before", "loaded:stats_ext"])
        with self.assertRaises(LookupError):
            await call("extension", "call_missing", [])
        with self.assertRaises(ValueError):
            await call("extension", "fail", [])
        for refused in ("emit_event", "stop", "_private", "nope"):
            with self.assertRaises(AttributeError):
                await call("extension", refused, [])
        self.assertTrue(await call("extension", "emit_from_thread", ["threaded"]))
        event = await self.host.next("event")
        self.assertEqual((event["name"], event["payload"]), ("threaded", {"thread": True}))

        self.host.peer.send({"k": "shutdown"})
        stopping = await self.host.next("event")  # sent by the stop() hook before the exit
        self.assertEqual(stopping["name"], "stopping")
        self.assertEqual(await self.host.exit_status(), 0)

    async def test_eof_exits_promptly_even_with_calls_running(self):
        await self.ready()
        call = asyncio.ensure_future(self.host.peer.call("extension", "forever", []))
        await asyncio.sleep(0.05)
        self.host.peer.close()
        self.assertEqual(await self.host.exit_status(timeout=5), 0)
        with self.assertRaises(ConnectionError):
            await call

    async def test_eof_before_init(self):
        self.host.peer.close()
        self.assertEqual(await self.host.exit_status(timeout=5), 0)

    async def test_shutdown_before_init(self):
        self.host.peer.send({"k": "shutdown"})
        self.assertEqual(await self.host.exit_status(timeout=5), 0)

    async def test_unknown_message_kind_is_a_protocol_error(self):
        await self.ready()
        self.host.peer.send({"k": "bogus"})
        self.assertEqual(await self.host.exit_status(), P.EXIT_PROTOCOL_ERROR)
        self.assertIn("protocol error, exiting: unexpected message kind 'bogus'", await self.host.stderr())

    async def test_missing_dependency_is_fatal_with_the_real_error(self):
        error = await self.fatal("broken_ext")
        self.assertEqual(error["type"], "ModuleNotFoundError")
        self.assertIn("numpy_is_not_installed_here", error["message"])
        self.assertIn("broken_ext/__init__.py", error["traceback"])

    async def test_folder_without_init_is_fatal(self):
        error = await self.fatal("noinit_ext")
        self.assertIn("has no __init__.py", error["message"])

    async def test_several_classes_need_extension_class(self):
        error = await self.fatal("two_ext")
        self.assertIn("two_ext:First, two_ext:Second", error["message"])
        self.assertIn("extensionClass", error["message"])

    async def test_discovery_looks_into_imported_submodules(self):
        error = await self.fatal("explicit_ext")
        self.assertIn("explicit_ext.impl:Impl, explicit_ext.other:Other", error["message"])

    async def test_explicit_extension_class(self):
        ready = await self.ready("explicit_ext", "explicit_ext.impl:Impl")
        self.assertEqual(ready["extensionClass"], "explicit_ext.impl:Impl")
        self.assertEqual(await self.host.peer.call("extension", "which", []), "impl")

    async def test_explicit_class_hook_runs_before_the_package_import(self):
        await self.ready("order_ext", "order_outside:Outside")
        self.assertEqual(
            await self.host.peer.call("extension", "report", []),
            ["before:package imported=False", "loaded:order_ext=42"],
        )

    async def test_extension_class_must_subclass_extension_base(self):
        error = await self.fatal("order_ext", "order_outside:sys")
        self.assertIn("not a subclass of pyisolate.ExtensionBase", error["message"])

    async def test_version_mismatch_names_both_versions(self):
        error = await self.fatal("stats_ext", v=99)
        self.assertIn("version 99", error["message"])
        self.assertIn("version 1", error["message"])

    async def test_oversized_frame_from_the_host_is_a_crash(self):
        self.host.peer._transport.write(struct.pack(">II", 2**31, 10))
        self.assertEqual(await self.host.exit_status(), P.EXIT_PROTOCOL_ERROR)
        self.assertIn("exceeds the limit", await self.host.stderr())


class RawWireTest(unittest.IsolatedAsyncioTestCase):
    """The hello frame read with nothing but struct and json: the bytes match docs/protocol.md."""

    async def test_hello_bytes(self):
        proc, sock = await spawn_guest()
        try:
            reader, writer = await asyncio.open_unix_connection(sock=sock)
            total, hlen = struct.unpack(">II", await reader.readexactly(8))
            self.assertEqual(total, 4 + hlen)
            header = await reader.readexactly(hlen)
            hello = json.loads(header)
            self.assertEqual((hello["k"], hello["v"], hello["runtime"]), ("hello", 1, "0.1.0"))
            self.assertNotIn(b" ", header)  # compact separators
            writer.close()
            self.assertEqual(await asyncio.wait_for(proc.wait(), 10), 0)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    async def test_without_the_socket_it_says_why(self):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            "-u",
            os.path.join(FIXTURES, "..", "..", "pyisolate", "_guest", "bootstrap.py"),
            stderr=asyncio.subprocess.PIPE,
            close_fds=True,
        )
        _, err = await asyncio.wait_for(proc.communicate(), 10)
        self.assertEqual(proc.returncode, 2)
        self.assertIn(b"fd 3 is not the host's socket", err)


if __name__ == "__main__":
    unittest.main()
