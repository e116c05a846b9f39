"""Process entry point of an extension: `python -I -S -u .../pyisolate/_guest/bootstrap.py`, fd 3 = host."""

import os
import sys

_EXIT_NOT_CONFINED = 4  # protocol.EXIT_NOT_CONFINED by value: the runtime is not importable yet


def _run_sibling(env_switch: str, module_file: str, errors: tuple, what: str) -> None:
    """Where the host set `env_switch`, load the sibling `module_file` by path (the runtime is not importable yet:
    nothing of the package runs before it) and call its `from_env()`; a failure exits before any extension code."""
    if env_switch not in os.environ:
        return
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), module_file)
    spec = importlib.util.spec_from_file_location("_pyisolate_" + module_file[:-3], path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        module.from_env()
    except errors as e:
        sys.stderr.write(f"pyisolate guest: {what}: {e}\n")
        sys.stderr.flush()
        os._exit(_EXIT_NOT_CONFINED)


# First of all, before the runtime is imported, so that the supervisor holds no more than a bare interpreter, and
# outside the Landlock domain that the child then creates (see supervisor.py; only where the host asks: no PID
# namespace).
_run_sibling("PYISOLATE_SUPERVISE", "supervisor.py", (OSError,), "the supervisor could not be started")
# The kernel's limits the host asked for (src/limits/rlimits.ts), in the extension's process only (not in the
# supervisor, which must outlive a process that passed them), before any of its code: see rlimits.py.
_run_sibling(
    "PYISOLATE_RLIMITS",
    "rlimits.py",
    (OSError, ValueError),
    "the resource limits the host asked for could not be applied",
)

# `-I` keeps the script's folder off sys.path: put the runtime root (<pkg>/python) there ourselves.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from pyisolate._guest import protocol as P  # noqa: E402
from pyisolate._guest import sandbox as _sandbox  # noqa: E402
from pyisolate._guest import tcp_link as _tcp  # noqa: E402
from pyisolate._guest import venv_activate as _venv  # noqa: E402

# The TCP transport dials the host now, before confinement: the sandbox then needs no network rule at all (the
# connection exists; no new one can be made). Only the TCP connect: TLS and the token come on the event loop.
_dial = None
if _tcp.wanted():
    try:
        _dial = _tcp.dial_from_env()
    except (OSError, ValueError) as _e:
        sys.stderr.write(f"pyisolate guest: could not reach the host: {_e}\n")
        sys.stderr.flush()
        os._exit(P.EXIT_NO_HOST)

# Landlock (and its seccomp socket filter) first, while nothing from the venv can have run: `-S` kept its
# site-packages (and .pth files) away.
try:
    _sandbox.confine_from_env()
except (OSError, ValueError, KeyError) as _e:
    sys.stderr.write(f"pyisolate guest: the confinement the host asked for could not be applied: {_e}\n")
    sys.stderr.flush()
    os._exit(P.EXIT_NOT_CONFINED)
# Then the venv the host named (its site-packages, .pth files, sys.prefix): the host started the base interpreter.
try:
    _venv.activate_from_env()
except (ValueError, KeyError) as _e:
    sys.stderr.write(f"pyisolate guest: the venv the host named could not be activated: {_e}\n")
    sys.stderr.flush()
    os._exit(P.EXIT_NO_VENV)

import asyncio  # noqa: E402
import socket  # noqa: E402
import threading  # noqa: E402

from pyisolate._guest import guest_loop as _guest_loop  # noqa: E402
from pyisolate._guest import heartbeat as _heartbeat  # noqa: E402
from pyisolate._guest.session import serve  # noqa: E402

_EXIT_GRACE_S = 2.0  # after serving ends, how long interpreter teardown may take before a hard exit


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL us when the host dies, and leave now if it already has."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return  # no prctl: the socket's EOF still ends us when the host goes
    # The host may have died before prctl took effect: then we were re-parented. We compare
    # with the parent seen before, not with 1, since under `bwrap --unshare-pid` it is pid 1.
    if os.getppid() != parent:
        os._exit(P.EXIT_PARENT_GONE)


def _cancel_leftovers(loop) -> None:
    # Tasks the extension started itself: cancel them, but give them only a moment.
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.wait(tasks, timeout=1.0))


def main() -> int:
    _die_with_parent()
    if _dial is not None:
        # A guest started elsewhere (python -m pyisolate._guest.remote) finds the extension where its node has it.
        return _serve_tcp(_dial, os.environ.pop("PYISOLATE_MODULE_PATH", None))
    try:
        sock = socket.socket(fileno=P.CHANNEL_FD)
    except OSError as e:
        sys.stderr.write(
            f"pyisolate guest: fd {P.CHANNEL_FD} is not the host's socket ({e}); "
            f"this script is started by the pyisolate host\n"
        )
        return P.EXIT_NO_CHANNEL
    loop = _guest_loop.new_event_loop()
    asyncio.set_event_loop(loop)
    _heartbeat.start(loop)  # before the extension's code: it answers for the loop, outside it
    try:
        return loop.run_until_complete(serve(sock))
    finally:
        _cancel_leftovers(loop)


def _serve_tcp(dial, module_path=None) -> int:
    loop = _guest_loop.new_event_loop()
    asyncio.set_event_loop(loop)
    if dial.heartbeat is not None:
        _heartbeat.start_on(dial.heartbeat, loop)

    async def streams():
        try:
            return await _tcp.open_streams(dial)
        except (OSError, asyncio.TimeoutError) as e:
            raise _NoHost(e) from None

    try:
        return loop.run_until_complete(serve(None, open_streams=streams, module_path=module_path))
    except _NoHost as e:
        sys.stderr.write(f"pyisolate guest: could not connect to the host: {e.args[0]}\n")
        return P.EXIT_NO_HOST
    finally:
        _cancel_leftovers(loop)


class _NoHost(Exception):
    pass


def _exit(code: int) -> None:
    """Exit normally (atexit hooks run), but never hang on a thread the extension left running."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    watchdog = threading.Timer(_EXIT_GRACE_S, os._exit, (code,))
    watchdog.daemon = True
    watchdog.start()
    sys.exit(code)


if __name__ == "__main__":
    _exit(main())
