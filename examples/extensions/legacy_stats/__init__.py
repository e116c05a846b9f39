"""Example extension pinned to numpy 1.x (see pyisolate.yaml): it reports its numpy and computes stats."""

import numpy as np

from pyisolate import ExtensionBase, ProxiedSingleton


class Ledger(ProxiedSingleton):
    """Host service: calls go to the object the host registered as "Ledger"."""

    async def record(self, source, key, value):
        ...


class LegacyStats(ExtensionBase):
    async def on_module_loaded(self, module):
        self.calls = 0

    async def numpy_version(self):
        # np.float_ was removed in numpy 2.0: its presence proves which numpy this process runs.
        return {"numpy": np.__version__, "has_float_alias": hasattr(np, "float_")}

    async def summarize(self, values):
        self.calls += 1
        data = np.asarray(values, dtype=np.float64)
        self.emit_event("progress", {"extension": "legacy_stats", "items": int(data.size)})
        summary = {"mean": float(data.mean()), "std": float(data.std()), "max": float(data.max())}
        total = await Ledger().record("legacy_stats", "mean", summary["mean"])
        summary["ledger_entries"] = total
        return summary
