"""One registry class for everything looked up by name: the tasks (``usedge.tasks.TASKS``), the model presets
(``usedge.models.presets.MODELS``) and the backends (``usedge.backends.BACKENDS``)."""
from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from usedge.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object table whose lookup errors list the valid names and the closest matches.

    Example:
        >>> backbones = Registry("backbone")
        >>> @backbones.register("tiny")
        ... def tiny(): ...
        >>> backbones.get("tiny") is tiny
        True
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """Register ``obj`` under ``name``; usable as a decorator when ``obj`` is omitted."""

        def add(item: T) -> T:
            if name in self._items:
                raise ConfigError(f"{self.kind} '{name}' is registered twice.", fix="pick a unique name.")
            self._items[name] = item
            return item

        return add(obj) if obj is not None else add

    def get(self, name: str) -> T:
        """Return the object registered under ``name`` or raise a ConfigError listing valid names."""
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(self.unknown_message(name), fix=f"use one of: {', '.join(self.names())}") from None

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, self._items, n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        return f"Unknown {self.kind} '{name}'.{hint}"

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
