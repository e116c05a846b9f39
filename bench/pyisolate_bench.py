"""Runs the benchmark scenarios against PyPI pyisolate and prints one JSON object on stdout.

Run with the bench venv's interpreter (bench/setup-pyisolate.sh creates it):
    bench/.work/pyisolate-venv/bin/python bench/pyisolate_bench.py [--out FILE] [--only a,b]

bench/ours.mjs runs the same scenarios against our Node.js host; bench/run.mjs compares them.
A scenario is one async function in SCENARIOS below, taking the Bench and returning
{metric_name: number}; add one here and its twin in ours.mjs.
"""

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXTENSIONS_DIR = HERE / "extensions"
EXT_PATH = EXTENSIONS_DIR / "bench_ext"
VENV_ROOTS = HERE / ".work" / "pyisolate-ext-venvs"
LOCAL_WHEELS = "/opt/wheels"

# pyisolate re-imports the extension type and the service classes in the child by their
# dotted names, so they must come from an importable module, not from __main__.
sys.path.insert(0, str(EXTENSIONS_DIR))

from bench_ext import BenchExtension, BenchService  # noqa: E402
from bench_stats import latency_summary, median  # noqa: E402
from pyisolate_tensors import scenario_tensors  # noqa: E402

import pyisolate  # noqa: E402
from pyisolate import ExtensionManager, SandboxMode  # noqa: E402

WARMUP_CALLS = 200
STEADY_WARMUP_CALLS = 10_000  # the same as ours: calls before the steady-state block
TIMED_CALLS = 2000
PIPELINED_CALLS = 5000
STEADY_BURSTS = 10  # bursts before the steady-state ones, as ours
TIMED_BURSTS = 5
WARM_STARTS = 5
IDLE_SETTLE_S = 0.5


def venv_root(share_torch):
    """One root per mode: share_torch only takes effect when pyisolate creates the venv."""
    return VENV_ROOTS / ("share-torch" if share_torch else "plain")


def extension_config(share_torch, name="bench_ext"):
    """A fresh config per load: pyisolate mutates the dict it is given."""
    return {
        "name": name,
        "module_path": str(EXT_PATH),
        "isolated": True,
        # Without share_torch the child venv does not inherit the host's site-packages,
        # and the child is started as `python -m pyisolate._internal.uds_client`, so
        # pyisolate itself must be installed there.
        "dependencies": [] if share_torch else [f"pyisolate=={pyisolate.__version__}"],
        "apis": [BenchService],
        "share_torch": share_torch,
        # Set explicitly: when absent pyisolate probes CUDA IPC support on every load.
        "share_cuda_ipc": False,
        # Our host runs extensions unsandboxed in this comparison; match it.
        "sandbox_mode": SandboxMode.DISABLED,
    }


class Bench:
    """Owns the pyisolate manager and the extension currently loaded; collects meta and skipped metrics."""

    def __init__(self, share_torch):
        self.share_torch = share_torch
        self.manager = ExtensionManager(BenchExtension, {"venv_root_path": str(venv_root(share_torch))})
        self.ext = None
        self.host_pid = os.getpid()
        self.meta = {}
        self.skipped = {}  # metric -> why it was not measured

    def skip(self, metric, reason):
        self.skipped[metric] = reason
        print(f"skipped {metric}: {reason}", file=sys.stderr, flush=True)

    def load_tensor_extensions(self, names):
        """The tensor scenario's extensions: share_torch=True, so their own manager and venv root."""
        manager = ExtensionManager(BenchExtension, {"venv_root_path": str(venv_root(True))})
        return manager, [manager.load_extension(extension_config(True, name)) for name in names]

    async def start(self):
        """Loads the extension and waits for its first reply; returns elapsed ns."""
        started = time.perf_counter_ns()
        # load_extension is lazy: the venv check, spawn and connect happen on first use.
        ext = self.manager.load_extension(extension_config(self.share_torch))
        await ext.ping(1)
        elapsed = time.perf_counter_ns() - started
        self.ext = ext
        return elapsed

    def stop(self):
        # Extension.stop() in 0.10.2 is synchronous (the README's `await ext.stop()` fails).
        self.manager.stop_all_extensions()
        self.ext = None

    async def ensure_started(self):
        if self.ext is None:
            await self.start()
        return self.ext


def read_proc_mib(pid, file, field):
    """One `field: N kB` line of /proc/<pid>/<file>, in MiB."""
    with open(f"/proc/{pid}/{file}", encoding="ascii") as lines:
        for line in lines:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/{pid}/{file}")


def read_rss_mib(pid):
    return read_proc_mib(pid, "status", "VmRSS")


def read_pss_mib(pid):
    """Proportional set size (shared pages split among their users): the extension is one process here."""
    return read_proc_mib(pid, "smaps_rollup", "Pss")


# --- scenarios ------------------------------------------------------------------------


async def scenario_idle_rss(bench):
    ext = await bench.ensure_started()
    pid = await ext.pid()
    await asyncio.sleep(IDLE_SETTLE_S)
    return {"idle_rss_mib": read_rss_mib(pid), "idle_tree_pss_mib": read_pss_mib(pid)}


async def timed_pings(ext, count):
    samples = []
    clock = time.perf_counter_ns
    for _ in range(count):
        start = clock()
        await ext.ping(1)
        samples.append(clock() - start)
    return samples


async def scenario_host_to_ext(bench):
    """Two blocks of the same calls: right after a short warm-up, and once warm (as ours)."""
    ext = await bench.ensure_started()
    for _ in range(WARMUP_CALLS):
        await ext.ping(1)
    fresh = await timed_pings(ext, TIMED_CALLS)
    for _ in range(STEADY_WARMUP_CALLS):
        await ext.ping(1)
    steady = await timed_pings(ext, TIMED_CALLS)
    return {**latency_summary("host_to_ext", fresh), **latency_summary("host_to_ext_steady", steady)}


async def scenario_ext_to_host(bench):
    ext = await bench.ensure_started()
    await ext.call_host(WARMUP_CALLS)
    samples = await ext.call_host(TIMED_CALLS)
    return latency_summary("ext_to_host", samples)


async def scenario_pipelined(bench):
    """As ours: one burst after a short warm-up, then the median of TIMED_BURSTS once STEADY_BURSTS have run."""
    ext = await bench.ensure_started()

    async def burst():
        start = time.perf_counter_ns()
        replies = await asyncio.gather(*(ext.ping(i) for i in range(PIPELINED_CALLS)))
        elapsed = time.perf_counter_ns() - start
        if replies != list(range(PIPELINED_CALLS)):
            raise RuntimeError("pipelined replies out of order or wrong")
        return PIPELINED_CALLS / (elapsed / 1e9)

    await asyncio.gather(*(ext.ping(i) for i in range(WARMUP_CALLS)))
    fresh = await burst()
    for _ in range(STEADY_BURSTS):
        await burst()
    steady = sorted([await burst() for _ in range(TIMED_BURSTS)])
    return {"pipelined_calls_per_s": fresh, "pipelined_steady_calls_per_s": steady[len(steady) // 2]}


async def scenario_warm_start(bench):
    # The venv exists by now (the first load made it), so each load only spawns + connects.
    bench.stop()
    samples = []
    for _ in range(WARM_STARTS):
        samples.append(await bench.start())
        bench.stop()
    return {"warm_start_median_ms": median(samples) / 1e6}


BYTES_PLAN = json.loads((HERE / "bytes-plan.json").read_text())


async def scenario_bytes(bench):
    """Echoes of 1 MB and 50 MB of bytes; the extension's RSS idle before and settled after (as ours)."""
    ext = await bench.ensure_started()
    pid = await ext.pid()
    settle = BYTES_PLAN["settle_ms"] / 1000
    await asyncio.sleep(settle)
    out = {"bytes_rss_idle_mib": read_rss_mib(pid)}
    clock = time.perf_counter_ns
    for case in BYTES_PLAN["cases"]:
        size = case["size"]
        data = bytearray(size)
        data[::4096] = bytes(i & 0xFF for i in range(0, size, 4096))
        data = bytes(data)
        if await ext.echo(data) != data:
            raise RuntimeError(f"bytes echo of {case['label']} came back different")
        samples = []
        case_start = clock()
        for i in range(case["reps"]):
            if i >= 3 and clock() - case_start > BYTES_PLAN["case_budget_s"] * 1e9:
                break
            start = clock()
            await ext.echo(data)
            samples.append(clock() - start)
        out[f"bytes_echo_{case['label']}_median_ms"] = median(samples) / 1e6
    out["bytes_rss_at_last_echo_mib"] = read_rss_mib(pid)  # what a burst holds (pools, kept buffers)
    await asyncio.sleep(settle)
    out["bytes_rss_after_50MB_mib"] = read_rss_mib(pid)
    out["bytes_rss_growth_mib"] = out["bytes_rss_after_50MB_mib"] - out["bytes_rss_idle_mib"]
    return out


SCENARIOS = {
    "idle_rss": scenario_idle_rss,
    "host_to_ext": scenario_host_to_ext,
    "ext_to_host": scenario_ext_to_host,
    "pipelined": scenario_pipelined,
    "warm_start": scenario_warm_start,
    "bytes": scenario_bytes,
    "tensors": scenario_tensors,  # pyisolate_tensors.py; last, as it stops the small-call extension
}


# --- driver ---------------------------------------------------------------------------


def prepare_environment():
    """uv and its find-links must be right before pyisolate shells out to uv."""
    venv_bin = str(Path(sys.executable).parent)
    os.environ["PATH"] = venv_bin + os.pathsep + os.environ.get("PATH", "")
    # uv ignores pip's config. Without share_torch, pyisolate installs torch==<host
    # version> into the child venv; from PyPI alone that resolves to the CUDA build and
    # its nvidia-* wheels (GBs). With the local wheel dir it resolves to 2.13.0+cpu.
    if os.path.isdir(LOCAL_WHEELS) and "UV_FIND_LINKS" not in os.environ:
        os.environ["UV_FIND_LINKS"] = LOCAL_WHEELS


async def run(args):
    bench = Bench(share_torch=args.share_torch)
    venv_existed = (venv_root(args.share_torch) / "bench_ext" / "bin" / "python").exists()
    metrics, errors = {}, {}
    try:
        first_ns = await bench.start()
        metrics["first_load_ms"] = first_ns / 1e6
        selected = args.only.split(",") if args.only else list(SCENARIOS)
        for name in selected:
            try:
                metrics.update(await SCENARIOS[name](bench))
            except Exception as exc:  # one broken scenario must not hide the others
                errors[name] = f"{type(exc).__name__}: {exc}"
    except Exception as exc:
        errors["load"] = f"{type(exc).__name__}: {exc}"
    finally:
        bench.stop()
    return {
        "side": "pyisolate",
        "meta": {
            "pyisolate_version": pyisolate.__version__,
            "python": platform.python_version(),
            "torch": _torch_version(),
            "sandbox": "disabled",
            "share_torch": args.share_torch,
            "execution_model": "host-coupled",
            "first_load_venv_existed": venv_existed,
            "cpus": os.cpu_count(),
            "loadavg_at_end": os.getloadavg()[0],
            **bench.meta,
        },
        "metrics": metrics,
        "skipped": bench.skipped,
        "errors": errors,
    }


def _torch_version():
    torch = sys.modules.get("torch")
    return getattr(torch, "__version__", None)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="also write the JSON result to this file")
    parser.add_argument("--only", help="comma-separated scenario names: " + ",".join(SCENARIOS))
    parser.add_argument("--share-torch", action="store_true", help="load with share_torch=True")
    args = parser.parse_args()
    unknown = set(args.only.split(",")) - set(SCENARIOS) if args.only else set()
    if unknown:
        parser.error(f"--only: unknown scenario(s) {', '.join(sorted(unknown))}")
    return args


def main():
    args = parse_args()
    # pyisolate's children inherit fd 1 and log to it; keep the real stdout for the JSON.
    json_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    prepare_environment()
    result = asyncio.run(run(args))
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    json_out.write(text + "\n")
    json_out.flush()
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
