"""Benchmark extension shared by both hosts: PyPI pyisolate and our Node.js runtime.

Written only against pyisolate's public API (ExtensionBase, ProxiedSingleton) and the
stdlib, so the same file loads unchanged under either host.

How each host finds these classes:
- PyPI pyisolate instantiates the *host's* extension_type in the child, re-importing it
  by its dotted name ("bench_ext.BenchExtension"), so its bench host puts
  bench/extensions on sys.path and passes BenchExtension itself. Services listed in the
  config's "apis" are re-imported the same way and switched to remote mode.
- Inside the extension process, ``BenchService()`` returns the proxy to the host's
  instance (ProxiedSingleton.use_remote has injected it), so ``await BenchService().ping(x)``
  is one extension -> host round trip.

New scenarios (tensor round trips, ...) add a method here and a function on each host side.
"""

import os
import time

from pyisolate import ExtensionBase, ProxiedSingleton


class BenchService(ProxiedSingleton):
    """Host-side service; in the extension process calls are forwarded to the host."""

    async def ping(self, x):
        return x


class BenchExtension(ExtensionBase):
    """The extension under test: host -> extension calls land on these methods."""

    async def ping(self, x):
        return x

    async def pid(self):
        return os.getpid()

    async def call_host(self, n):
        """Makes n sequential small calls to the host service; returns each latency in ns."""
        service = BenchService()
        latencies = []
        clock = time.perf_counter_ns
        for _ in range(int(n)):
            start = clock()
            await service.ping(1)
            latencies.append(clock() - start)
        return latencies
