"""The tensor scenario on PyPI pyisolate with share_torch=True: round trips at each size of
tensor-plan.json (torch and numpy), host -> A -> B forwarding, and peak RSS per case.
Twin of ours_tensors.mjs; the host here is Python (pyisolate's), there it is Node.

How pyisolate 0.10.2 moves these values (its _internal/rpc_transports.py, tensor_serializer.py):
- torch: the JSON message carries the name of a /dev/shm file (torch's file_system sharing
  strategy, files handed out by torch_shm_manager); the receiver maps that file. A tensor not yet
  in shared memory is first moved there by share_memory_(), a copy, once per tensor.
- numpy: json.dumps' default hook calls ndarray.tolist(), so every element travels as JSON text,
  and the receiver gets a Python list, not an array. The extension returns that list, which
  travels back the same way.
"""

import asyncio
import json
import time
from pathlib import Path

from bench_stats import median

HERE = Path(__file__).resolve().parent
PLAN = json.loads((HERE / "tensor-plan.json").read_text(encoding="utf-8"))
ITEM_SIZE = 4  # float32
MIB = 2**20


def bytes_of(size):
    n = ITEM_SIZE
    for dim in size["shape"]:
        n *= dim
    return n


# --- memory, from /proc ---------------------------------------------------------------


def _status_kib(pid, field):
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for pid {pid}")


def reset_peak_rss(pid):
    """Resets VmHWM to the current RSS (Linux 4.0+), so that a peak can be taken per case."""
    with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as f:
        f.write("5")


def mem_available_bytes():
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


class Peaks:
    """Context manager: resets the peak RSS of each pid on entry; .peaks_mib and .growth_bytes after exit."""

    def __init__(self, pids):
        self.pids = pids

    def __enter__(self):
        self.before = []
        for pid in self.pids:
            reset_peak_rss(pid)
            self.before.append(_status_kib(pid, "VmRSS") / 1024)
        return self

    def __exit__(self, *exc):
        self.peaks_mib = [_status_kib(pid, "VmHWM") / 1024 for pid in self.pids]
        self.growth_bytes = sum(max(0, p - b) * MIB for p, b in zip(self.peaks_mib, self.before))
        return False


# --- cases ----------------------------------------------------------------------------


class Guard:
    """Skips a case when the previous size of the same kind, scaled by the byte ratio, predicts one
    call over the plan's max_call_s or a peak RSS growth over its share of MemAvailable."""

    def __init__(self):
        self.last = {}  # kind -> (bytes, call_ns, growth_bytes) of the last size that ran
        self.skipped_kinds = {}

    def reason_to_skip(self, kind, size):
        if kind in self.skipped_kinds:
            return f"a smaller size was skipped ({self.skipped_kinds[kind]})"
        if kind not in self.last:
            return None
        last_bytes, call_ns, growth = self.last[kind]
        scale = bytes_of(size) / last_bytes
        seconds = call_ns * scale / 1e9
        allowed = PLAN["max_memory_fraction"] * mem_available_bytes()
        reason = None
        if seconds > PLAN["max_call_s"]:
            reason = f"one call would take ~{seconds:.0f} s (limit {PLAN['max_call_s']} s)"
        elif growth * scale > allowed:
            reason = f"peak RSS would grow ~{growth * scale / 2**30:.1f} GiB (limit {allowed / 2**30:.1f} GiB)"
        if reason:
            self.skipped_kinds[kind] = f"{size['label']}: {reason}"
        return reason

    def record(self, kind, size, call_ns, growth_bytes):
        self.last[kind] = (bytes_of(size), call_ns, growth_bytes)


async def time_case(size, call):
    """After settle_ms, one untimed first call, then up to size.reps timed calls while the case is within budget."""
    await asyncio.sleep(PLAN["settle_ms"] / 1e3)  # the previous case's tensors are freed meanwhile, not during this one
    clock = time.perf_counter_ns
    started = clock()
    await call()
    first_ns = clock() - started
    samples = []
    budget_ns = PLAN["case_budget_s"] * 1e9
    while len(samples) < size["reps"] and clock() - started < budget_ns:
        t0 = clock()
        await call()
        samples.append(clock() - t0)
    # The first call alone spent the budget: it is the only sample there is.
    return first_ns, samples or [first_ns]


def _ones(shape, framework):
    """Written once, as a producer would (its pages count in the host's RSS), like ours_tensors.mjs."""
    if framework == "torch":
        import torch

        return torch.ones(shape, dtype=torch.float32)
    import numpy

    return numpy.ones(shape, dtype=numpy.float32)


def _type_name(value):
    return f"{type(value).__module__}.{type(value).__qualname__}"


def _check_echo(key, value, back, shape):
    """pyisolate returns the payload dict itself when it fails to rebuild a tensor; catch that."""
    if isinstance(back, list):
        ok = len(back) == shape[0]
    else:
        ok = type(back) is type(value) and list(back.shape) == list(shape)
    if not ok:
        raise RuntimeError(f"{key}: sent {_type_name(value)} {list(shape)}, got back {_type_name(back)}")


async def _timed_median_us(warm, timed):
    """Median, in µs, of `timed()` after `warm()` as many times as the plan says."""
    for _ in range(PLAN["small_calls"]["warmup"]):
        await warm()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(PLAN["small_calls"]["timed"]):
        t0 = clock()
        await timed()
        samples.append(clock() - t0)
    return median(samples) / 1e3


async def small_calls(ext):
    return await _timed_median_us(lambda: ext.ping(1), lambda: ext.ping(1))


async def small_call_pairs(a, b):
    """A small call to A then one to B, timed as a pair (a forward's messages, no tensor), as ours."""

    async def pair():
        await a.ping(1)
        await b.ping(1)

    return await _timed_median_us(lambda: b.ping(1), pair)


async def warm_frameworks(a, b):
    """Imports torch and numpy's paths in both extensions, then tensor_warmup echoes of the first size, untimed."""
    for framework in ("torch", "numpy"):
        warm = _ones(PLAN["sizes"][0]["shape"], framework)
        for ext in (a, b):
            for _ in range(PLAN["tensor_warmup"]):
                await ext.echo(warm)


def peak_keys(framework, size):
    return [f"tensor_peak_rss_{who}_{framework}_{size['label']}_mib" for who in ("host", "ext")]


async def round_trips(bench, ext, ext_pid, guard, metrics):
    returned = bench.meta.setdefault("tensor_returned_types", {})
    for size in PLAN["sizes"]:  # size-major, as ours_tensors.mjs: the frameworks side by side at each size
        for framework in PLAN["round_trip_frameworks"]:
            kind = f"rt_{framework}"
            key = f"tensor_{kind}_{size['label']}"
            reason = guard.reason_to_skip(kind, size)
            if reason:
                for metric in [f"{key}_median_us", *peak_keys(framework, size)]:
                    bench.skip(metric, reason)
                continue
            with Peaks([bench.host_pid, ext_pid]) as peaks:
                value = _ones(size["shape"], framework)

                async def call(value=value, key=key, shape=size["shape"], framework=framework):
                    back = await ext.echo(value)
                    _check_echo(key, value, back, shape)
                    returned[framework] = _type_name(back)

                first_ns, samples = await time_case(size, call)
                del value, call  # the torch tensor may still sit in pyisolate's TensorKeeper (5 s)
            call_ns = median(samples)
            guard.record(kind, size, call_ns, peaks.growth_bytes)
            metrics.update(
                {
                    f"{key}_median_us": call_ns / 1e3,
                    f"{key}_first_us": first_ns / 1e3,
                    f"{key}_reps": len(samples),
                    **dict(zip(peak_keys(framework, size), peaks.peaks_mib)),
                }
            )


async def forwarding(bench, a, b, pids, guard, metrics):
    framework = PLAN["forward"]["framework"]
    for size in [s for s in PLAN["sizes"] if s["label"] in PLAN["forward"]["sizes"]]:
        key = f"tensor_fwd_{framework}_{size['label']}"
        reason = guard.reason_to_skip("fwd", size)
        if reason:
            bench.skip(f"{key}_median_us", reason)
            continue

        async def call(shape=size["shape"], key=key):
            # A returns the same shared tensor each time; the host hands it to B, which reads one element.
            tensor = await a.make_tensor(shape, framework)
            seen = await b.describe(tensor)
            if seen["shape"] != list(shape):
                raise RuntimeError(f"{key}: B saw shape {seen['shape']}")

        with Peaks([bench.host_pid, *pids]) as peaks:
            first_ns, samples = await time_case(size, call)
        await a.drop_tensors()
        call_ns = median(samples)
        guard.record("fwd", size, call_ns, peaks.growth_bytes)
        label = size["label"]
        metrics.update(
            {
                f"{key}_median_us": call_ns / 1e3,
                f"{key}_first_us": first_ns / 1e3,
                f"{key}_reps": len(samples),
                f"tensor_fwd_peak_rss_host_{label}_mib": peaks.peaks_mib[0],
                f"tensor_fwd_peak_rss_a_{label}_mib": peaks.peaks_mib[1],
                f"tensor_fwd_peak_rss_b_{label}_mib": peaks.peaks_mib[2],
            }
        )


async def scenario_tensors(bench):
    """Loads extensions A and B with share_torch=True (their own manager), then runs the plan."""
    bench.stop()  # the small-call extension would only add its RSS and CPU
    manager, (a, b) = bench.load_tensor_extensions(["bench_tensor_a", "bench_tensor_b"])
    try:
        pids = [await a.pid(), await b.pid()]
        metrics = {
            "tensor_small_call_median_us": await small_calls(a),
            "tensor_small_call_pair_median_us": await small_call_pairs(a, b),
        }
        await warm_frameworks(a, b)
        import torch.multiprocessing

        bench.meta["tensor_share_torch"] = True
        bench.meta["tensor_torch_sharing_strategy"] = torch.multiprocessing.get_sharing_strategy()
        guard = Guard()
        await round_trips(bench, a, pids[0], guard, metrics)
        await forwarding(bench, a, b, pids, guard, metrics)
        return metrics
    finally:
        manager.stop_all_extensions()
