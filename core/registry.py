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
        self._defaults: Dict[str, str] = {}  # family tag -> its default entry (timm-style: arcface -> arcface.r100)

    def register(self, name: str, spec: S) -> Callable[[F], F]:
        def deco(factory: F) -> F:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is already registered")
            self._entries[name] = (spec, factory)
            return factory

        return deco

    def add(self, name: str, spec: S, factory: Callable) -> None:
        self.register(name, spec)(factory)

    def set_default(self, family: str, name: str) -> None:
        """``family`` (a name without a tag, e.g. ``arcface``) stands for ``name`` (``arcface.r100``)."""
        if family in self._entries:
            raise ValueError(f"{self.kind} '{family}' is an entry; it cannot also be a family tag")
        self._defaults[family] = name

    def resolve(self, name: str) -> str:
        """The registered name ``name`` stands for: itself, or its family's default."""
        if name in self._entries:
            return name
        if name in self._defaults:
            return self._defaults[name]
        raise UnknownNameError(self.kind, name, [*self._entries, *self._defaults])

    def __contains__(self, name: str) -> bool:
        return name in self._entries or name in self._defaults

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def spec(self, name: str) -> S:
        return self._lookup(name)[0]

    def factory(self, name: str) -> Callable:
        return self._lookup(name)[1]

    def _lookup(self, name: str) -> Tuple[S, Callable]:
        return self._entries[self.resolve(name)]

    def defaults(self) -> Dict[str, str]:
        """Family tag -> default entry."""
        return dict(self._defaults)

    def names(self, pattern: Optional[str] = None) -> List[str]:
        """Sorted names, optionally filtered: a pattern with ``*?[`` is an fnmatch pattern (``arcface.*``),
        any other text matches names that contain it, case-insensitively (``blendface``, ``r100``)."""
        names = sorted(self._entries)
        if pattern and any(c in pattern for c in "*?["):
            names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        elif pattern:
            names = [n for n in names if pattern.lower() in n.lower()]
        return names
