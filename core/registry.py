"""A small generic name registry (timm/pyiqa style): register by decorator, look up by name."""

from __future__ import annotations

import fnmatch
from typing import Callable, Dict, Generic, Iterator, List, Optional, Tuple, TypeVar

from .errors import UnknownNameError

S = TypeVar("S")  # the spec type
F = TypeVar("F", bound=Callable)


class Registry(Generic[S]):
    """Maps a name to ``(spec, factory)``.

    ``kind`` is used in error messages ("unknown encoder 'arcfce.r100'. Did you mean ...").
    Registering an existing name raises, so two files cannot silently shadow each other.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: Dict[str, Tuple[S, Callable]] = {}

    def register(self, name: str, spec: S) -> Callable[[F], F]:
        def deco(factory: F) -> F:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is already registered")
            self._entries[name] = (spec, factory)
            return factory

        return deco

    def add(self, name: str, spec: S, factory: Callable) -> None:
        self.register(name, spec)(factory)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def spec(self, name: str) -> S:
        return self._lookup(name)[0]

    def factory(self, name: str) -> Callable:
        return self._lookup(name)[1]

    def _lookup(self, name: str) -> Tuple[S, Callable]:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self._entries) from None

    def names(self, pattern: Optional[str] = None) -> List[str]:
        """Sorted names, optionally filtered by an fnmatch pattern (``arcface.*``)."""
        names = sorted(self._entries)
        if pattern:
            names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        return names
