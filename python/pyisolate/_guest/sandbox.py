"""The guest's side of the sandbox at start: the supervisor, confinement when the host asks, then site processing.

The interpreter starts with ``-I -S``: the venv's site-packages is not on ``sys.path`` and none of its ``.pth``
files has run. (Before this module is imported, ``bootstrap.py`` has forked the supervisor where the host asked:
see ``supervisor.py``.) ``confine_from_env`` applies the host's Landlock rules, drops every capability
and installs the seccomp filter (under bwrap: the capabilities and the filter's process part, as defence in depth);
``run_site`` then adds the venv's site directory, so every line of code the venv holds runs confined.
"""

import importlib.machinery
import importlib.util
import json
import os
import sys

__all__ = ["LANDLOCK_ENV", "PROCESS_FILTER_ENV", "confine_from_env", "run_site"]

LANDLOCK_ENV = "PYISOLATE_LANDLOCK"
PROCESS_FILTER_ENV = "PYISOLATE_PROCESS_FILTER"  # "1": under bwrap, drop capabilities and filter process calls


class _PackageAt:
    """Finds the extension package by its location: under Landlock its parent folder cannot be listed."""

    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        init = os.path.join(self.path, "__init__.py")
        return importlib.util.spec_from_file_location(fullname, init, submodule_search_locations=[self.path])


def _install_package_finder(package_dir):
    finder = _PackageAt(package_dir)
    # Just before the path-based finder: where the parent folder on sys.path would have found it.
    at = next((i for i, f in enumerate(sys.meta_path) if f is importlib.machinery.PathFinder), len(sys.meta_path))
    sys.meta_path.insert(at, finder)


def _explain_socket_refusals(network: bool, unix_sockets: bool) -> None:
    """A socket the filter refuses raises PermissionError that says why and what the host can change."""
    import socket

    create = socket.socket.__init__

    def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
        try:
            create(self, family, type, proto, fileno)
        except PermissionError as e:
            if fileno is not None:
                raise
            if family == socket.AF_UNIX and not unix_sockets:
                hint = "Unix sockets are refused by the pyisolate sandbox (Landlock backend); the host application can allow them with sandbox.unixSockets: true"
            elif not network:
                hint = "this extension has no network (pyisolate sandbox); the host application can give it with sandbox.network: true"
            else:
                raise
            raise PermissionError(e.errno, f"{e.strerror}: {hint}") from None

    socket.socket.__init__ = __init__


def _filter_processes_under_bwrap(sockets=False):
    # With `sockets` (the TCP transport: bwrap shares the host's network namespace so the guest could dial the host) the
    # socket part is the barrier that replaces the empty namespace, so failing to install it is fatal.
    if sockets:
        from . import caps, seccomp

        caps.drop_all()
        seccomp.install(False, False, sockets=True, processes=True)
        _explain_socket_refusals(False, False)
        return
    # bwrap's namespaces already hide the host's processes and names and drop the capabilities: this is the second
    # line (the session keyring, BPF, perf, the kernel log stay reachable from a namespace), so a kernel or an
    # architecture that cannot take it is a warning, not a refusal to run.
    from . import caps, seccomp

    try:
        caps.drop_all()
        seccomp.install(True, True, sockets=False, processes=True)
    except OSError as e:
        sys.stderr.write("pyisolate guest: the seccomp process filter is not applied under bwrap: %s\n" % e)


def confine_from_env():
    """Confine this process with the rules in ``PYISOLATE_LANDLOCK``; returns the ABI, or 0 when not asked.

    Landlock, then every capability dropped, then the seccomp filter: socket creation (what Landlock does not
    police: Unix sockets by path, and every protocol but TCP) and the process rules. Raises OSError (or ValueError,
    KeyError for malformed rules) when asked and it cannot be done: the caller must exit.
    """
    process_filter = os.environ.pop(PROCESS_FILTER_ENV, None)
    if process_filter in ("1", "sockets") and LANDLOCK_ENV not in os.environ:
        _filter_processes_under_bwrap(sockets=process_filter == "sockets")
        return 0
    spec = os.environ.pop(LANDLOCK_ENV, None)
    if spec is None:
        return 0
    rules = json.loads(spec)
    from . import caps, landlock, seccomp

    network = bool(rules["network"])
    abi = landlock.confine(rules["read_only"], rules["writable"], network)
    caps.drop_all()  # after Landlock, which opens the rules' paths with whatever the process may open
    unix_sockets = bool(rules.get("unix_sockets", False))
    if rules.get("socket_filter", True):  # false only where the host knows the filter cannot run (its architecture)
        seccomp.install(network, unix_sockets)
        _explain_socket_refusals(network, unix_sockets)
    if rules.get("package_dir"):
        _install_package_finder(rules["package_dir"])
    return abi


def run_site():
    """Site processing, if the interpreter skipped it (``-S``): the venv's site-packages and its ``.pth`` files."""
    if not sys.flags.no_site:
        return
    import site

    site.main()
