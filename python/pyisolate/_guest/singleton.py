"""ProxiedSingleton: one instance per class; its methods call the host service of that name, if the host has one."""

from __future__ import annotations

import contextlib
import functools
import sys
import types

from . import context
from .context import current_peer
from .service_stream import ServiceStream, streams


def local_execution(func):
    """Mark a ProxiedSingleton method to run in the extension instead of over RPC."""
    func._is_local_execution = True
    return func


_REMOTE = "_pyisolate_remote"  # set in each class's own namespace when its instance is made: remote or local


def _remote_stub(name: str, original):
    if streams(original):
        return _stream_stub(name, original)

    # A remote singleton's method returns the call's awaitable (no extra coroutine frame); a local one's runs as written.
    def stub(self, *args, **kwargs):
        if type(self).__dict__.get(_REMOTE, False):
            return current_peer().call(type(self).get_remote_id(), name, args, kwargs)
        return original(self, *args, **kwargs)

    functools.update_wrapper(stub, original)
    stub._is_remote_stub = True
    return stub


def _stream_stub(name: str, original):
    # A method written as a generator streams: the remote one returns a ServiceStream (read with `async for`).
    def stub(self, *args, **kwargs):
        if type(self).__dict__.get(_REMOTE, False):
            return ServiceStream(current_peer(), type(self).get_remote_id(), name, args, kwargs)
        return original(self, *args, **kwargs)

    functools.update_wrapper(stub, original)
    stub._is_remote_stub = True
    return stub


def _is_remote(cls) -> bool:
    """Remote when the connected host provides (and grants) the service; local otherwise, as in pyisolate 0.10.

    A peer that was never told the host's services (`None`) treats every singleton as remote.
    """
    if cls.__dict__.get("_pyisolate_force_remote", False):
        return True
    peer = context.peek_peer()
    if peer is None:
        return False
    provided = peer.services
    return provided is None or cls.get_remote_id() in provided


def _singleton_hints(cls) -> list:
    """(name, class) for each public annotation of `cls` naming a ProxiedSingleton subclass; unresolvable ones skipped."""
    found = []
    for klass in reversed(cls.__mro__):
        module = sys.modules.get(klass.__module__)
        for name, hint in vars(klass).get("__annotations__", {}).items():
            if name.startswith("_"):
                continue
            if isinstance(hint, str):  # `from __future__ import annotations`, or a forward reference
                try:
                    hint = eval(hint, dict(vars(module)) if module else {}, dict(vars(klass)))  # noqa: S307
                except Exception:
                    continue
            if isinstance(hint, type) and issubclass(hint, ProxiedSingleton):
                found = [(n, h) for n, h in found if n != name] + [(name, hint)]
    return found


class SingletonMetaclass(type):
    """Keeps one instance per class and turns public methods into calls to the host.

    When its instance is made, a class becomes a stub for the host's service named get_remote_id() if the
    host provides that service to this extension: each public function not marked @local_execution then
    returns an awaitable RPC call, whether it was written `async def` or `def` (one written as a generator,
    `def`/`async def` with `yield`, returns a ServiceStream to read with `async for`), and each public attribute
    annotated with a ProxiedSingleton subclass is set to that class's instance. Otherwise it stays an
    ordinary local singleton whose methods run as written (pyisolate 0.10 does the same). Keyword
    arguments travel as the call's `kw`: a JavaScript service method receives them as one extra
    trailing argument, a plain object, only when the caller passed any.
    """

    _instances: dict = {}

    def __new__(mcs, name, bases, namespace, **kwargs):
        for attr_name, attr in list(namespace.items()):
            if (
                not attr_name.startswith("_")
                and isinstance(attr, types.FunctionType)
                and not getattr(attr, "_is_local_execution", False)
            ):
                namespace[attr_name] = _remote_stub(attr_name, attr)
        return super().__new__(mcs, name, bases, namespace, **kwargs)

    def __call__(cls, *args, **kwargs):
        instance = SingletonMetaclass._instances.get(cls)
        if instance is None:
            remote = _is_remote(cls)
            type.__setattr__(cls, _REMOTE, remote)
            instance = SingletonMetaclass._instances[cls] = super().__call__(*args, **kwargs)
            if remote:
                # Stored first, so that two singletons that name each other end.
                for name, hint in _singleton_hints(cls):
                    setattr(instance, name, hint())
        return instance

    def get_instance(cls, *args, **kwargs):
        """The class's one instance, made on first use (pyisolate compatibility)."""
        return cls(*args, **kwargs)

    def inject_instance(cls, instance) -> None:
        """Use `instance` as the class's singleton; it must not exist yet (pyisolate compatibility)."""
        if cls in SingletonMetaclass._instances:
            raise RuntimeError(f"{cls.__name__} already has an instance; inject before first use")
        SingletonMetaclass._instances[cls] = instance

    def use_remote(cls, rpc=None) -> None:
        """Make the class a stub for the host service of its name even if the host did not say it provides one.

        As in pyisolate, it must come before the class's instance is made (RuntimeError otherwise, unless that
        instance is already remote).
        """
        existing = SingletonMetaclass._instances.get(cls)
        if existing is not None and not cls.__dict__.get(_REMOTE, False):
            raise RuntimeError(f"{cls.__name__} already has a local instance; call use_remote before first use")
        type.__setattr__(cls, "_pyisolate_force_remote", True)


class ProxiedSingleton(metaclass=SingletonMetaclass):
    """Base class for host services as seen from an extension (see SingletonMetaclass)."""

    def __init__(self) -> None:
        object.__init__(self)

    @classmethod
    def get_remote_id(cls) -> str:
        """The host service name the calls go to; the class name unless overridden."""
        return cls.__name__


class RemoteObject:
    """A proxy whose methods call the host's target `object_id` (ExtensionLocal.create_caller).

    Method names are checked against `object_type`; @local_execution methods run here, bound
    to the proxy.
    """

    def __init__(self, object_type: type, object_id: str) -> None:
        self._type = object_type
        self._object_id = object_id

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        attr = getattr(self._type, name, None)
        if attr is None or not callable(attr):
            raise AttributeError(f"{self._type.__name__} has no method {name!r}")
        if getattr(attr, "_is_local_execution", False):
            return types.MethodType(attr, self)
        object_id = self._object_id
        if streams(attr):  # written as a generator: a stream of the host's object, read with `async for`

            def method(*args, **kwargs):
                return ServiceStream(current_peer(), object_id, name, args, kwargs)

        else:

            def method(*args, **kwargs):
                return current_peer().call(object_id, name, args, kwargs)

        method.__name__ = name
        return method

    def __repr__(self) -> str:
        return f"<RemoteObject {self._object_id!r} ({self._type.__name__})>"


@contextlib.contextmanager
def singleton_scope():
    """Singletons made or injected inside the block are dropped at its end; the earlier ones come back.

    Instances that existed before the block stay visible inside it (a service stub keeps working); an
    instance replaced or added inside lives only until the block ends, however it ends. Scopes nest.
    The table is process-wide, so a scope is for one thread of setup or tests at a time.
    """
    saved = dict(SingletonMetaclass._instances)
    try:
        yield
    finally:
        SingletonMetaclass._instances.clear()
        SingletonMetaclass._instances.update(saved)
