"""Object handles: values that cannot cross the wire stay in the extension, and the host gets a small dict naming them.

A handle is `{"__pyisolate_handle__": "<id>", "type": "<class name>"}`: plain JSON, so it travels both ways
unchanged, and the host may keep it, show it, or pass it back as (part of) an argument, where it is
replaced by the object it names. Ids carry a random prefix per table, so a handle from another extension
(or an earlier process of this one) is refused instead of naming the wrong object.
"""

from __future__ import annotations

import itertools
import os
import sys

from . import tensor_value, tensors

HANDLE_KEY = "__pyisolate_handle__"
_HANDLE_KEYS = frozenset((HANDLE_KEY, "type"))
_PLAIN = (str, int, float, bool, bytes, bytearray, memoryview)


def is_handle(value) -> bool:
    """Whether `value` has the shape of a handle (whatever table it came from)."""
    return type(value) is dict and HANDLE_KEY in value and value.keys() <= _HANDLE_KEYS


def travels(value) -> bool:
    """Whether the wire carries `value` itself (a leaf: not a list, tuple or dict)."""
    if value is None or isinstance(value, _PLAIN):
        return True
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(value, np.generic):
            return isinstance(value.item(), _PLAIN)
        if isinstance(value, np.ndarray):
            return value.dtype.name in tensors.DTYPES
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return value.layout == torch.strided and not value.is_quantized
    return False


class HandleTable:
    """The objects an extension handed out as handles, by id, until cleared."""

    def __init__(self) -> None:
        self._objects = {}
        self._prefix = os.urandom(4).hex()
        self._ids = itertools.count(1)

    def __len__(self) -> int:
        return len(self._objects)

    def wrap(self, value):
        """`value` with every leaf the wire cannot carry replaced by a handle (lists, tuples, dicts walked)."""
        if isinstance(value, (list, tuple)):  # subclasses (named tuples) travel as lists, like the codec sends them
            items = [self.wrap(v) for v in value]
            return tuple(items) if type(value) is tuple else items
        if isinstance(value, tensor_value.TensorValue):
            return value  # travels as a tensor (codec.py), not as the dict it looks like
        if isinstance(value, dict) and all(k is None or isinstance(k, (str, int, float, bool)) for k in value):
            return {k: self.wrap(v) for k, v in value.items()}
        if travels(value):
            return value
        return self.add(value)

    def add(self, obj) -> dict:
        """Keep `obj` and return a new handle for it."""
        object_id = f"{self._prefix}-{next(self._ids)}"
        self._objects[object_id] = obj
        return {HANDLE_KEY: object_id, "type": type(obj).__name__}

    def resolve(self, value):
        """`value` with every handle replaced by its object; KeyError for a handle this table did not give."""
        if is_handle(value):
            return self.get(value[HANDLE_KEY])
        if type(value) is dict:
            return {k: self.resolve(v) for k, v in value.items()}
        if type(value) in (list, tuple):
            return type(value)(self.resolve(v) for v in value)
        return value

    def get(self, object_id):
        """The object kept under `object_id` (an id string, or a whole handle)."""
        if is_handle(object_id):
            object_id = object_id[HANDLE_KEY]
        try:
            return self._objects[object_id]
        except (KeyError, TypeError):
            raise KeyError(
                f"object handle {object_id!r} is unknown here: this extension did not give it "
                f"out, or flush_transport_state() has dropped it"
            ) from None

    def clear(self) -> int:
        """Drop every kept object; return how many there were."""
        count = len(self._objects)
        self._objects.clear()
        return count
