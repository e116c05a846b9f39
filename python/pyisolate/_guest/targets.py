"""Named call targets and the rule for which of their attributes the other side may call."""

from __future__ import annotations


class Targets:
    """Objects exposed by name; only their public callables, minus names hidden per target."""

    def __init__(self) -> None:
        self._by_name = {}  # target name -> (object, names refused on it)

    def register(self, name: str, obj: object, hidden=()) -> None:
        if not isinstance(name, str):
            raise TypeError(f"a call target name must be a string, got {name!r}")
        entry = self._by_name.get(name)
        if entry is not None and entry[0] is obj:
            # The same object again (an extension registering itself as "extension"): it keeps the names hidden both times.
            self._by_name[name] = (obj, entry[1] | frozenset(hidden))
            return
        if entry is not None:
            raise ValueError(f"a call target named {name!r} is already registered")
        self._by_name[name] = (obj, frozenset(hidden))

    def method(self, target, method):
        """The bound method to call; LookupError (no target) or AttributeError (refused)."""
        entry = self._by_name.get(target)
        if entry is None:
            raise LookupError(f"no call target named {target!r}")
        obj, hidden = entry
        if type(method) is not str or method.startswith("_") or method in hidden:
            raise AttributeError(f"{method!r} is not a public method of {target!r}")
        attr = getattr(obj, method, None)
        if attr is None or not callable(attr) or isinstance(attr, type):
            raise AttributeError(f"{target!r} has no method {method!r}")
        return attr
