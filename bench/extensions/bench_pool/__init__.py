"""Benchmark extension for pools: a CPU-bound pure-Python loop that holds the GIL for its whole run."""

from pyisolate import ExtensionBase


class BenchPool(ExtensionBase):
    def spin(self, iterations):
        total = 0
        for i in range(iterations):
            total += i * i % 7
        return total
