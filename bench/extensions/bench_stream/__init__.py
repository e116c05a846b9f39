"""Benchmark extension: generators of small items and of arrays, a host-stream reader, and one item per call."""

from pyisolate import ExtensionBase, shared_empty


class BenchStream(ExtensionBase):
    def ints(self, n):
        yield from range(n)

    def arrays(self, n, floats):
        """`n` fresh shared-memory float32 arrays of `floats` elements (each crosses with no copy)."""
        for i in range(n):
            array = shared_empty((floats,), "float32")
            array[0] = i
            yield array

    def one(self, i):
        return i

    async def total(self, stream):
        total = 0
        async for item in stream:
            total += item
        return total
