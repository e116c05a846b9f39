"""Probe extension for bench/investigate/latency.mjs: bench_ext's ping, plus timestamps and gc timing.

ping(x) is the same coroutine as bench_ext's (returns x). While a probe is armed (start_probe), it also
records time.monotonic_ns() at method entry, and a wrapper around the guest's frame write records when
each reply is handed to the transport. gc.callbacks record every collection (generation, start, stop).
CLOCK_MONOTONIC is shared with the host's process.hrtime.bigint(), so both sides' stamps compare.
"""

import gc
import os
import resource
import time
from array import array

from pyisolate import ExtensionBase

_mono = time.monotonic_ns
_T_IN = array("q")
_T_OUT = array("q")
_CSW = array("q")  # involuntary context switches of this process at method entry (rusage mode only)
_GC = []  # (generation, start_ns, stop_ns, collected)
_STATE = {"armed": False, "rusage": False, "gc_start": 0, "gc_gen": 0}


def _gc_callback(phase, info):
    if phase == "start":
        _STATE["gc_start"] = _mono()
    else:
        _GC.append((info["generation"], _STATE["gc_start"], _mono(), info["collected"]))


class ProbeExtension(ExtensionBase):
    async def ping(self, x):
        if _STATE["armed"]:
            _T_IN.append(_mono())
            if _STATE["rusage"]:
                _CSW.append(resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw)
        return x

    async def pid(self):
        return os.getpid()

    async def start_probe(self, opts):
        """Arm the stamps; opts: {gc: bool, rusage: bool, stamp_writes: bool, disable_gc: bool,
        gc_threshold0: int|None}."""
        del _T_IN[:], _T_OUT[:], _CSW[:], _GC[:]
        _STATE["rusage"] = bool(opts.get("rusage"))
        if opts.get("gc", True) and _gc_callback not in gc.callbacks:
            gc.callbacks.append(_gc_callback)
        if opts.get("disable_gc"):
            gc.disable()
        if opts.get("gc_threshold0"):
            t = gc.get_threshold()
            gc.set_threshold(int(opts["gc_threshold0"]), t[1], t[2])
        if opts.get("recv_size"):
            # asyncio's socket transport recv()s max_size (256 KiB) per read: over glibc's mmap threshold,
            # so every read maps, shrinks (mremap) and unmaps a buffer. Try a smaller one.
            from pyisolate._guest.context import current_peer

            current_peer()._transport.max_size = int(opts["recv_size"])
        if opts.get("stamp_writes", True):
            _wrap_writes()
        _STATE["armed"] = True
        return {
            "threshold": gc.get_threshold(),
            "count": gc.get_count(),
            "frozen": gc.get_freeze_count(),
            "isenabled": gc.isenabled(),
        }

    async def stop_probe(self):
        _STATE["armed"] = False
        if _gc_callback in gc.callbacks:
            gc.callbacks.remove(_gc_callback)
        gc.enable()
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "t_in": list(_T_IN),
            "t_out": list(_T_OUT),
            "csw": list(_CSW),
            "gc": [list(e) for e in _GC],
            "gc_stats": gc.get_stats(),
            "frozen": gc.get_freeze_count(),
            "nivcsw": ru.ru_nivcsw,
            "nvcsw": ru.ru_nvcsw,
        }


def _wrap_writes():
    """Stamp each frame write of the guest (the result frames of ping) with monotonic_ns."""
    from pyisolate._guest.context import current_peer

    out = current_peer()._out
    if getattr(out, "_probe_wrapped", False):
        return
    inner = out._write_now

    def write_now(chunks):
        inner(chunks)
        if _STATE["armed"]:
            _T_OUT.append(_mono())

    out._write_now = write_now
    out._probe_wrapped = True
