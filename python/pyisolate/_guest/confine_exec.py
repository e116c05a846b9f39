"""Confine this process with Landlock, then become the installer: ``python -I -S confine_exec.py -- ARGV...``.

The host's install sandbox for hosts where bubblewrap cannot run. The rules come as JSON in the
``PYISOLATE_LANDLOCK`` variable (removed before the exec): ``read_only`` and ``writable`` path lists, ``network``
(false: TCP bind and connect are denied, ABI 4+, and no socket but a Unix pair can be made), ``unix_sockets``
(false or absent: ``socket(AF_UNIX)`` is refused by the seccomp filter) and ``cwd`` (the folder to start in).
Landlock rules, the seccomp filter and ``no_new_privs`` survive ``execve``, so uv or pip and every build backend
they start run confined (under a supervisor, ``supervisor.py``, that kills whatever they leave behind when the
installer exits); so does the empty capability set (``caps.py``: uid 0 keeps none across the exec) and the
filter's process rules. Nothing of the venv being built is imported here: only this file and ``landlock.py``,
``caps.py``, ``supervisor.py`` and ``seccomp.py`` beside it, all stdlib-only. If any of it cannot be applied the command is never run (exit 4).
"""

import importlib.util
import json
import os
import sys

_ENV = "PYISOLATE_LANDLOCK"
_EXIT_USAGE = 2
_EXIT_NOT_CONFINED = 4
_PR_SET_PDEATHSIG = 1
_SIGKILL = 9


def _load(name):
    # `-I` keeps this folder off sys.path, and importing the pyisolate package would run far more than needed.
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location("_pyisolate_" + name, os.path.join(here, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _die_with_parent():
    """SIGKILL when the host dies (kept across execve): an install never outlives the host that started it."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, _SIGKILL, 0, 0, 0)


def _fail(code, message):
    sys.stderr.write("pyisolate install sandbox: %s\n" % message)
    sys.stderr.flush()
    os._exit(code)


def _proxy_port(rules):
    """The install proxy's TCP port when the install may reach the indexes only through it (``proxy_port``), else None."""
    port = rules.get("proxy_port")
    if port is None:
        return None
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise ValueError("proxy_port must be a TCP port, got %r" % (port,))
    return port


def _confine_to_proxy(install_net, port, seccomp):
    """Stacked on the rules above: TCP connect to the proxy's port alone, and no socket but TCP (install_net.py)."""
    install_net.confine_to_port(port, seccomp)


def main(argv):
    if len(argv) < 2 or argv[0] != "--" or not os.path.isabs(argv[1]):
        _fail(_EXIT_USAGE, "usage: confine_exec.py -- /absolute/program [args...]")
    command = argv[1:]
    try:
        rules = json.loads(os.environ.pop(_ENV))
        read_only, writable = list(rules["read_only"]), list(rules["writable"])
        network, unix_sockets, cwd = bool(rules["network"]), bool(rules.get("unix_sockets", False)), rules.get("cwd")
        socket_filter = bool(rules.get("socket_filter", True))
        proxy_port = _proxy_port(rules)
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        _fail(_EXIT_NOT_CONFINED, "no usable rules in %s (%s): refusing to run %s unconfined" % (_ENV, e, command[0]))
    _die_with_parent()
    try:
        # Before confinement, as the guest's: the supervisor stays outside the Landlock domain, and a build backend's
        # setsid daemon dies when the installer exits (or when the host sends SIGTERM, or dies).
        _load("supervisor").fork_supervised(_load("caps").drop_all)
    except OSError as e:
        _fail(_EXIT_NOT_CONFINED, "the supervisor could not be started (%s): refusing to run %s" % (e, command[0]))
    try:
        # All loaded first: this folder is not among the paths Landlock then leaves readable.
        landlock, caps, seccomp = _load("landlock"), _load("caps"), _load("seccomp")
        install_net = _load("install_net") if proxy_port is not None else None
        # With a proxy port TCP is handled by the stacked ruleset below (allowing nothing would also deny the port).
        landlock.confine(read_only, writable, network or proxy_port is not None)
    except OSError as e:
        _fail(_EXIT_NOT_CONFINED, "Landlock could not be applied (%s): refusing to run %s unconfined" % (e, command[0]))
    try:
        caps.drop_all()
    except OSError as e:
        _fail(_EXIT_NOT_CONFINED, "%s: refusing to run %s with them" % (e, command[0]))
    try:
        if socket_filter:  # false only where the host knows the filter cannot run (its architecture)
            seccomp.install(network or proxy_port is not None, unix_sockets)
        if proxy_port is not None:
            _confine_to_proxy(install_net, proxy_port, seccomp)
    except OSError as e:
        _fail(
            _EXIT_NOT_CONFINED,
            "the seccomp socket filter could not be applied (%s): refusing to run %s unconfined" % (e, command[0]),
        )
    if cwd:
        os.chdir(cwd)
    try:
        os.execv(command[0], command)
    except OSError as e:
        _fail(127, "could not run %s: %s" % (command[0], e))


if __name__ == "__main__":
    main(sys.argv[1:])
