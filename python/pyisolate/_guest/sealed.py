"""SealedNodeExtension: a ComfyUI-style (V1) node pack served as an extension, by NODE_CLASS_MAPPINGS."""

from __future__ import annotations

import asyncio
import functools
import inspect

from .compat import flush_tensor_keeper
from .extension import ExtensionBase
from .handles import HandleTable


def plain(value):
    """`value` as plain data for node descriptions: containers walked, types by name, anything else as str()."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, dict):
        return {k if isinstance(k, str) else str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, type):
        return value.__qualname__
    return str(value)


class SealedNodeExtension(ExtensionBase):
    """Serves the V1 nodes of the extension package: `NODE_CLASS_MAPPINGS` and `NODE_DISPLAY_NAME_MAPPINGS`.

    Load it as the package's extension class (subclass it there, or set the host's extensionClass option
    to "pyisolate:SealedNodeExtension"). Node outputs the wire cannot carry stay here and go to the host
    as handles (see handles.py); a handle given back as an input is replaced by its object.
    """

    def __init__(self) -> None:
        super().__init__()
        self.node_classes = {}
        self.display_names = {}
        self.node_instances = {}
        self.handles = HandleTable()

    async def on_module_loaded(self, module) -> None:
        self.node_classes = _mapping(module, "NODE_CLASS_MAPPINGS")
        self.display_names = _mapping(module, "NODE_DISPLAY_NAME_MAPPINGS")
        self.node_instances = {}

    async def list_nodes(self) -> dict:
        """Node name -> display name, for every node the package defines."""
        return {name: str(self.display_names.get(name, name)) for name in self.node_classes}

    async def get_node_details(self, node_name: str) -> dict:
        """What a host needs to show and wire up the node; plain values only."""
        cls = self._node_class(node_name)
        names = getattr(cls, "RETURN_NAMES", None)
        is_list = getattr(cls, "OUTPUT_IS_LIST", None)
        return {
            "input_types": plain(_input_types(cls)),
            "return_types": [str(t) for t in getattr(cls, "RETURN_TYPES", ())],
            "return_names": None if names is None else [str(n) for n in names],
            "function": str(getattr(cls, "FUNCTION", "execute")),
            "category": str(getattr(cls, "CATEGORY", "")),
            "output_node": bool(getattr(cls, "OUTPUT_NODE", False)),
            "output_is_list": None if is_list is None else [bool(x) for x in is_list],
            "is_v3": False,
        }

    async def get_node_info(self, node_name: str) -> dict:
        """The same as get_node_details (pyisolate has both names)."""
        return await self.get_node_details(node_name)

    async def get_input_types(self, node_name: str) -> dict:
        """The node's INPUT_TYPES(), as plain values."""
        return plain(_input_types(self._node_class(node_name)))

    async def execute_node(self, node_name: str, /, **inputs) -> tuple:
        """Run the node's FUNCTION with `inputs`; its outputs as a tuple, unsendable ones as handles.

        Coroutine functions are awaited here; plain functions run in the default thread pool, so the
        extension keeps serving other calls meanwhile. With INPUT_IS_LIST every input arrives as a list.
        """
        cls = self._node_class(node_name)
        function_name = getattr(cls, "FUNCTION", "execute")
        instance = self.node_instances.get(node_name)
        if instance is None:
            instance = self.node_instances[node_name] = cls()
        handler = getattr(instance, function_name, None)
        if not callable(handler):
            raise AttributeError(f"node {node_name!r} has no method {function_name!r} (its FUNCTION)")
        inputs = {name: self.handles.resolve(v) for name, v in inputs.items()}
        if getattr(cls, "INPUT_IS_LIST", False):
            inputs = {name: v if isinstance(v, list) else [v] for name, v in inputs.items()}
        if inspect.iscoroutinefunction(handler):
            result = await handler(**inputs)
        else:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(None, functools.partial(handler, **inputs))
            if inspect.isawaitable(result):
                result = await result
        if not isinstance(result, tuple):
            result = (result,)
        return tuple(self.handles.wrap(item) for item in result)

    async def flush_transport_state(self) -> int:
        """Drop every handle given out so far, then flush_tensor_keeper(); its count is returned."""
        self.handles.clear()
        return flush_tensor_keeper()

    async def get_remote_object(self, object_id):
        """The object a handle (or its id) names, sent as the wire can: a callable comes as a function."""
        return self.handles.get(object_id)

    def _node_class(self, node_name: str) -> type:
        try:
            return self.node_classes[node_name]
        except (KeyError, TypeError):
            raise KeyError(f"node {node_name!r} is not in this extension's NODE_CLASS_MAPPINGS") from None


def _mapping(module, name: str) -> dict:
    value = getattr(module, name, None)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"{module.__name__}.{name} must be a dict, not {type(value).__name__}")
    return dict(value)


def _input_types(cls) -> dict:
    method = getattr(cls, "INPUT_TYPES", None)
    return method() if callable(method) else {}
