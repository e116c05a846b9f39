"""pyisolate 0.10 compatibility names: singleton_scope, the memory flushes, host-only stand-ins."""

import asyncio
import gc
import unittest

import pyisolate
from pyisolate import ProxiedSingleton, SingletonMetaclass, singleton_scope
from pyisolate._guest import segments

from .peers import BoundReleases


class Service(ProxiedSingleton):
    async def ping(self): ...


class Other(ProxiedSingleton):
    async def ping(self): ...


class SingletonScopeTest(unittest.TestCase):
    def setUp(self):
        self.saved = dict(SingletonMetaclass._instances)
        SingletonMetaclass._instances.pop(Service, None)
        SingletonMetaclass._instances.pop(Other, None)

    def tearDown(self):
        SingletonMetaclass._instances.clear()
        SingletonMetaclass._instances.update(self.saved)

    def test_instances_made_inside_are_dropped_and_earlier_ones_come_back(self):
        outer = Service()
        with singleton_scope():
            self.assertIs(Service(), outer, "earlier instances stay visible inside")
            inner = Other()
            self.assertIs(Other(), inner)
        self.assertIs(Service(), outer)
        self.assertNotIn(Other, SingletonMetaclass._instances)
        self.assertIsNot(Other(), inner)

    def test_injected_replacements_end_with_the_scope_even_on_error(self):
        outer = Service()
        replacement = object.__new__(Service)
        with self.assertRaises(ValueError):
            with singleton_scope():
                del SingletonMetaclass._instances[Service]
                Service.inject_instance(replacement)
                self.assertIs(Service(), replacement)
                raise ValueError("boom")
        self.assertIs(Service(), outer)

    def test_scopes_nest(self):
        with singleton_scope():
            a = Service()
            with singleton_scope():
                self.assertIs(Service(), a)
                b = Other()
            self.assertNotIn(Other, SingletonMetaclass._instances)
            self.assertIs(Service(), a)
            self.assertIsNot(Other(), b)
        self.assertNotIn(Service, SingletonMetaclass._instances)


class FlushTest(unittest.TestCase):
    def test_flush_frees_segments_in_cycles_and_keeps_what_the_host_holds(self):
        try:
            import numpy  # noqa: F401
        except ImportError:
            self.skipTest("numpy is not installed")
        gc_was = gc.isenabled()
        gc.disable()  # so that only the flush collects the cycle
        try:
            with BoundReleases() as bound:
                held = segments.allocate(4096)
                segments.keep(held)  # crossed the connection: the host holds it
                cycle = [pyisolate.shared_empty([1024], "uint8")]
                cycle.append(cycle)
                del cycle
                before = segments.live_count()
                freed = pyisolate.flush_tensor_keeper()
                self.assertGreaterEqual(freed, 1)
                self.assertEqual(segments.live_count(), before - freed)
                self.assertIs(segments.kept(held.ino), held, "a segment the host holds is never dropped")
                bound.loop.run_until_complete(asyncio.sleep(0))
                self.assertTrue(bound.sent, "the host is told about what went")
                self.assertNotIn(held.ino, bound.sent[0])
        finally:
            if gc_was:
                gc.enable()

    def test_flush_without_segments_and_purge_are_zero(self):
        self.assertGreaterEqual(pyisolate.flush_tensor_keeper(), 0)
        self.assertEqual(pyisolate.purge_orphan_sender_shm_files(), 0)
        self.assertEqual(pyisolate.purge_orphan_sender_shm_files(min_age_seconds=0, force=True), 0)


class AdapterTest(unittest.TestCase):
    def test_an_adapter_is_kept_in_the_process_and_none_before(self):
        from pyisolate._guest import compat

        self.addCleanup(setattr, compat, "_adapter", compat._adapter)
        compat._adapter = None
        self.assertIsNone(pyisolate.get_adapter())
        adapter = object()
        pyisolate.register_adapter(adapter)
        self.assertIs(pyisolate.get_adapter(), adapter)


class HostOnlyTest(unittest.TestCase):
    def test_host_names_import_and_fail_on_use(self):
        from pyisolate import ExtensionConfig, ExtensionManager, ExtensionManagerConfig, SandboxMode

        for stand_in in (ExtensionManager, ExtensionManagerConfig, ExtensionConfig):
            with self.assertRaisesRegex(RuntimeError, "belongs to the host.*Node"):
                stand_in()
        with self.assertRaisesRegex(RuntimeError, "SandboxMode belongs to the host"):
            SandboxMode.REQUIRED
        self.assertFalse(hasattr(SandboxMode, "_private"))
        for name in ("ExtensionManager", "SandboxMode"):
            self.assertNotIn(name, pyisolate.__all__)
        with self.assertRaises(AttributeError):
            pyisolate.NoSuchName


if __name__ == "__main__":
    unittest.main()
