"""The process's one live RPC peer, for code that has no handle on it (ProxiedSingleton stubs)."""

from __future__ import annotations

# The single piece of module state in the runtime: a guest process talks to exactly one host.
_current = None


def set_peer(peer) -> None:
    """Make `peer` the one that stubs and extension helpers use (None to clear)."""
    global _current
    _current = peer


def current_peer():
    """Return the connected peer or raise RuntimeError saying why there is none."""
    peer = _current
    if peer is None:
        raise RuntimeError(
            "pyisolate is not connected to a host: this code runs outside an extension process "
            "(or after the connection closed)"
        )
    return peer


def peek_peer():
    """The connected peer, or None outside an extension process (no error: callers decide what that means)."""
    return _current
