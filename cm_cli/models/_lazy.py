"""torch-backed classes built on first use, so importing a models module stays cheap.

Each model module defines its ``nn.Module`` classes inside a ``_modules()`` factory
(torch is imported there) and exposes them through ``LazyClasses``: the factory runs
once, the first time one of the named classes is asked for.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

__all__ = ["LazyClasses"]


class LazyClasses:
    def __init__(self, factory: Callable[[], dict[str, Any]], names: Sequence[str]):
        self._factory = factory
        self._names = frozenset(names)
        self._built: dict[str, Any] = {}

    def get(self) -> dict[str, Any]:
        if not self._built:
            self._built.update(self._factory())
        return self._built

    def module_getattr(self, name: str) -> Any:
        """A module-level ``__getattr__``: only the named classes trigger the build."""
        if name in self._names:
            return self.get()[name]
        raise AttributeError(name)
