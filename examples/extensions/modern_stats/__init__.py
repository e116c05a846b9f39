"""Example extension on numpy 2.x (see pyisolate.yaml): the same host, a different numpy, side by side."""

import numpy as np

from pyisolate import ExtensionBase, ProxiedSingleton


class Ledger(ProxiedSingleton):
    """Host service: calls go to the object the host registered as "Ledger"."""

    async def record(self, source, key, value):
        ...


class ModernStats(ExtensionBase):
    async def numpy_version(self):
        return {"numpy": np.__version__, "has_float_alias": hasattr(np, "float_")}

    def normalize(self, values):
        # A plain (sync) method works too.
        data = np.asarray(values, dtype=np.float64)
        spread = data.max() - data.min()
        return ((data - data.min()) / spread).round(4).tolist() if spread else [0.0] * data.size

    async def summarize(self, values):
        data = np.asarray(values, dtype=np.float64)
        self.emit_event("progress", {"extension": "modern_stats", "items": int(data.size)})
        summary = {"median": float(np.median(data)), "p90": float(np.quantile(data, 0.9))}
        summary["ledger_entries"] = await Ledger().record("modern_stats", "median", summary["median"])
        return summary
