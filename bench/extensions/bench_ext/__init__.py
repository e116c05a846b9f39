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

New scenarios add a method here and a function on each host side. The tensor methods import
torch/numpy inside the method: the small-call scenarios load this file into a venv without them.
"""

import os
import time

import pyisolate
from pyisolate import ExtensionBase, ProxiedSingleton


class BenchService(ProxiedSingleton):
    """Host-side service; in the extension process calls are forwarded to the host."""

    async def ping(self, x):
        return x


class BenchExtension(ExtensionBase):
    """The extension under test: host -> extension calls land on these methods."""

    _tensors = {}  # make_tensor's cache; one extension instance per process

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

    async def echo(self, value):
        """Returns its argument unchanged: the tensor round trip."""
        return value

    async def make_tensor(self, shape, framework):
        """A float32 tensor of ones in shared memory, made once per (shape, framework) and kept, so that
        each call returns the same memory: the forwarding scenario times transport, not allocation."""
        key = (tuple(shape), framework)
        if key not in self._tensors:
            self._tensors[key] = _shared_ones(shape, framework)
        return self._tensors[key]

    async def drop_tensors(self):
        self._tensors.clear()

    async def describe(self, tensor):
        """What the consumer of a forwarded tensor returns: its shape and first element (one read)."""
        return {"shape": list(tensor.shape), "first": tensor.reshape(-1)[0].item()}


def _shared_ones(shape, framework):
    # Our runtime allocates straight into a segment; PyPI pyisolate has no such helper, and
    # share_memory_() moves a torch tensor into its /dev/shm file once (later sends reuse it).
    shared_empty = getattr(pyisolate, "shared_empty", None)
    if shared_empty is not None:
        out = shared_empty(shape, "float32", like=framework)
        out[...] = 1
        return out
    if framework == "torch":
        import torch

        return torch.ones(shape, dtype=torch.float32).share_memory_()
    import numpy

    return numpy.ones(shape, dtype=numpy.float32)
