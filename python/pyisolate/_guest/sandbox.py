"""The guest's side of the sandbox at start: Landlock confinement when the host asks, then site processing.

The interpreter starts with ``-I -S``: the venv's site-packages is not on ``sys.path`` and none of its ``.pth``
files has run. ``confine_from_env`` applies the host's Landlock rules and the seccomp socket filter first;
``run_site`` then adds the venv's site directory, so every line of code the venv holds runs confined.
"""

import importlib.machinery
import importlib.util
import json
import os
import sys

__all__ = ["LANDLOCK_ENV", "confine_from_env", "run_site"]

LANDLOCK_ENV = "PYISOLATE_LANDLOCK"


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


def confine_from_env():
    """Confine this process with the rules in ``PYISOLATE_LANDLOCK``; returns the ABI, or 0 when not asked.

    Landlock, then the seccomp filter on socket creation (what Landlock does not police: Unix sockets by path,
    and every protocol but TCP). Raises OSError (or ValueError, KeyError for malformed rules) when asked and it
    cannot be done: the caller must exit.
    """
    spec = os.environ.pop(LANDLOCK_ENV, None)
    if spec is None:
        return 0
    rules = json.loads(spec)
    from . import landlock, seccomp

    network = bool(rules["network"])
    abi = landlock.confine(rules["read_only"], rules["writable"], network)
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
