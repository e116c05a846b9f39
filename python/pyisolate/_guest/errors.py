"""Exceptions to and from the wire's error object (docs/protocol.md, "Errors")."""

from __future__ import annotations

import builtins
import traceback


class RemoteError(Exception):
    """An error raised on the other side whose type has no Python builtin of the same name.

    Attributes: remote_type (the error's type name), remote_module, remote_message and
    remote_traceback (the other side's stack, as text).
    """

    def __init__(self, remote_type: str, message: str, remote_traceback: str = "", remote_module: str = "") -> None:
        super().__init__(f"{remote_type}: {message}" if remote_type else message)
        self.remote_type = remote_type
        self.remote_module = remote_module
        self.remote_message = message
        self.remote_traceback = remote_traceback


def error_to_wire(exc: BaseException) -> dict:
    """Describe an exception as the wire's error object."""
    cls = type(exc)
    try:
        message = str(exc)
    except Exception:  # a broken __str__ must not hide the original error
        message = f"<unprintable {cls.__name__}>"
    try:
        tb = "".join(traceback.format_exception(cls, exc, exc.__traceback__))
    except Exception:
        tb = ""
    return {"type": cls.__name__, "module": cls.__module__, "message": message, "traceback": tb}


def error_from_wire(err: object) -> Exception:
    """Build the exception to raise for an incoming error object.

    A builtin Exception subclass of the same name is used where one exists (ValueError stays
    ValueError), else RemoteError; both carry remote_type and remote_traceback.
    """
    if type(err) is not dict:
        err = {"type": "Error", "message": repr(err)}
    name = err.get("type")
    name = name if type(name) is str else "Error"
    message = err.get("message")
    message = message if type(message) is str else ""
    tb = err.get("traceback")
    tb = tb if type(tb) is str else ""
    module = err.get("module")
    module = module if type(module) is str else ""
    exc = None
    cls = getattr(builtins, name, None)
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            exc = cls(message)
        except Exception:  # builtins such as UnicodeDecodeError need more arguments
            exc = None
    if exc is None:
        exc = RemoteError(name, message, tb, module)
    exc.remote_type = name
    exc.remote_module = module
    exc.remote_traceback = tb
    return exc
