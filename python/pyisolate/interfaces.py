"""Import path kept for pyisolate compatibility: the adapter and serializer-registry protocols, as structural types.

Our host never consults an adapter (it is configured in TypeScript; see `register_adapter`), so these exist for
extension code that names them in type hints or checks `isinstance(obj, IsolationAdapter)`.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable


@runtime_checkable
class SerializerRegistryProtocol(Protocol):
    """What a registry of custom type serializers offers an adapter."""

    def register(
        self,
        type_name: str,
        serializer: Callable[[Any], Any],
        deserializer: Callable[[Any], Any] | None = None,
        *,
        data_type: bool = False,
    ) -> None: ...

    def get_serializer(self, type_name: str) -> Callable[[Any], Any] | None: ...

    def get_deserializer(self, type_name: str) -> Callable[[Any], Any] | None: ...

    def has_handler(self, type_name: str) -> bool: ...

    def is_data_type(self, type_name: str) -> bool: ...


@runtime_checkable
class IsolationAdapter(Protocol):
    """An application's hooks into pyisolate's host (paths, serializers, services); the members adapters define."""

    @property
    def identifier(self) -> str: ...

    def get_path_config(self, module_path: str) -> dict | None: ...

    def setup_child_environment(self, snapshot: dict) -> None: ...

    def register_serializers(self, registry: SerializerRegistryProtocol) -> None: ...

    def provide_rpc_services(self) -> list: ...

    def handle_api_registration(self, api: Any, rpc: Any) -> None: ...


__all__ = ["IsolationAdapter", "SerializerRegistryProtocol"]
