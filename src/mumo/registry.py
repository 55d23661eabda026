"""One generic name -> factory registry, instantiated per kind. It holds nothing else."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from mumo.errors import ConfigError

F = TypeVar("F", bound=Callable)


class Registry(Generic[F]):
    """Maps names to factories. Register with the :meth:`register` decorator."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, F] = {}

    def register(self, name: str) -> Callable[[F], F]:
        def deco(factory: F) -> F:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = factory
            return factory

        return deco

    def get(self, name: str) -> F:
        if name not in self._entries:
            raise ConfigError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}")
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries
