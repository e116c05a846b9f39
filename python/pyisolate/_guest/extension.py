"""ExtensionLocal and ExtensionBase: what extension authors subclass, and their RPC helpers."""

from __future__ import annotations

import inspect

from .context import current_peer
from .singleton import ProxiedSingleton, RemoteObject


class ExtensionLocal:
    """Code that runs inside the extension process: load hooks and RPC helpers."""

    async def before_module_loaded(self) -> None:
        """Hook run before the extension module is handed over (sync or async)."""

    async def on_module_loaded(self, module) -> None:
        """Hook run with the imported extension package (sync or async)."""

    def emit_event(self, name: str, payload=None) -> None:
        """Send a fire-and-forget event to the host; works from any thread.

        `payload` is any value the wire can carry; TypeError at once if it cannot. While 16 MiB of events wait for
        the host to read them, an emit from a thread blocks until it does, and one from the event loop (a method
        of the extension) raises BufferError.
        """
        current_peer().emit(name, payload)

    def register_callee(self, object_instance: object, object_id: str) -> None:
        """Let the host call the public methods of `object_instance` as target `object_id`.

        Registering the same object again under the same id is allowed (`register_callee(self, "extension")` in
        on_module_loaded, as pyisolate extensions do); another object under a taken id is a ValueError.
        """
        hidden = FRAMEWORK_NAMES if isinstance(object_instance, ExtensionLocal) else ()
        current_peer().register(object_id, object_instance, hidden)

    def create_caller(self, object_type: type, object_id: str):
        """A proxy whose methods (those `object_type` declares) call the host's `object_id`."""
        return RemoteObject(object_type, object_id)

    def use_remote(self, proxied_singleton: type) -> None:
        """Make `proxied_singleton` a stub for the host service of its name (see SingletonMetaclass.use_remote)."""
        if not (isinstance(proxied_singleton, type) and issubclass(proxied_singleton, ProxiedSingleton)):
            raise TypeError(f"{proxied_singleton!r} is not a ProxiedSingleton subclass")
        proxied_singleton.use_remote()


class ExtensionBase(ExtensionLocal):
    """Base class of every extension: its public methods are what the host can call."""

    async def stop(self) -> None:
        """Hook run when the host shuts the extension down (sync or async)."""


# The framework's own names: never callable by the host, even where an extension overrides them.
FRAMEWORK_NAMES = frozenset(
    name for cls in (ExtensionLocal, ExtensionBase) for name in vars(cls) if not name.startswith("_")
)


def stream_methods(instance: object, methods: list) -> list:
    """The names among `methods` that are generator or async generator functions: the host's proxy streams them."""
    cls = type(instance)
    names = []
    for name in methods:
        fn = inspect.unwrap(getattr(cls, name, None))
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            names.append(name)
    return names


def public_methods(instance: object) -> list:
    """The method names the host may call on `instance`, sorted."""
    cls = type(instance)
    names = []
    for name in dir(cls):
        if name.startswith("_") or name in FRAMEWORK_NAMES:
            continue
        attr = getattr(cls, name, None)
        if callable(attr) and not isinstance(attr, type):
            names.append(name)
    return names
