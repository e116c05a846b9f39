"""torch.inference_mode() for a whole extension process, as pyisolate 0.10 runs extensions that share torch."""

from __future__ import annotations

import concurrent.futures
import importlib.util
import logging
import sys

log = logging.getLogger("pyisolate.guest")


def enter(loop) -> object:
    """Enter inference mode on this thread (the event loop's: hooks and calls) and in every thread of the loop's
    default executor (sync nodes, `asyncio.to_thread`); return what `leave` needs, or None when torch is missing.

    Grad mode is per thread in torch, so the pool's threads enter it themselves as they start. Entered once for
    the process's life, not per call: interleaved calls on one loop would otherwise leave and enter out of order.
    """
    if "torch" not in sys.modules and importlib.util.find_spec("torch") is None:
        log.warning("pyisolate guest: inference mode was asked for, but torch is not importable here; left off")
        return None
    import torch

    mode = torch.inference_mode()
    mode.__enter__()
    loop.set_default_executor(
        concurrent.futures.ThreadPoolExecutor(thread_name_prefix="pyisolate-inference", initializer=_enter_in_thread)
    )
    return mode


def _enter_in_thread() -> None:
    import threading

    import torch

    mode = torch.inference_mode()
    mode.__enter__()
    # For the thread's whole life: torch leaves the mode when this object is collected, so the thread keeps it.
    threading.current_thread().pyisolate_inference_mode = mode


def leave(mode) -> None:
    """Leave the loop thread's inference mode (at shutdown, so that stop() and atexit see the usual state)."""
    if mode is not None:
        mode.__exit__(None, None, None)
