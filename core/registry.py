"""The one registry contract (timm/pyiqa style) shared by encoders, detectors, estimators, swappers and datasets.

Every entry is a :class:`Spec` (name, description, weight files, licence, paper, declared :class:`Option` s) and a
factory with ONE signature::

    factory(spec, weights, device, **options)

``weights`` is ``None`` when the spec needs no file, the resolved :class:`~pathlib.Path` when it needs one, and
``{filename: Path}`` when it needs several; ``options`` are exactly the spec's declared options (defaults filled).
:meth:`Registry.create` builds an entry: it resolves the name (family tags: ``arcface`` -> ``arcface.r100``),
resolves every weight file once (one line naming each missing file and where it goes), rejects an undeclared
option with a did-you-mean line, fills the declared defaults and calls the factory.

Registration is lazy: a registry knows the modules and packages that register into it and imports them on the
first lookup, then the installed plugins of its entry-point group (``idbench.encoders``, ``idbench.detectors``,
``idbench.estimators``, ``idbench.swappers``, ``idbench.datasets``). A module or plugin that fails to load is
listed in :attr:`Registry.import_errors` (and named when an unknown entry is asked for), never fatal.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import os
import pkgutil
import warnings
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Generic, Iterable, Iterator, List, Mapping, Optional, Tuple, TypeVar, Union

from .errors import UnknownNameError, WeightsNotFoundError
from .weights import WeightSource, resolve_weights

S = TypeVar("S")  # the spec type
F = TypeVar("F", bound=Callable)

#: an option default meaning "not passed: the factory's own default applies"
UNSET: Any = type("Unset", (), {"__repr__": lambda self: "UNSET", "__bool__": lambda self: False})()

#: what ``Registry.create(weights=...)`` takes: a path (the spec's file), or {filename or entry name: path}
WeightsArg = Union[None, str, os.PathLike, Mapping[str, Union[str, os.PathLike]]]


@dataclass(frozen=True)
class Option:
    """A keyword an entry's factory takes.

    ``weights_key``: the value is a weight file given on the command line as ``--weights KEY=PATH`` (an
    encoder the entry builds itself, e.g. inswapper's ``arcface.onnx``).
    """

    name: str
    default: Any = UNSET
    help: str = ""
    weights_key: str = ""


@dataclass(frozen=True)
class Spec:
    """What every registered entry declares; each kind's spec (EncoderSpec, DetectorSpec, ...) extends it."""

    name: str
    _: KW_ONLY
    description: str = ""
    weights: Tuple[WeightSource, ...] = ()
    licence: str = ""
    paper: str = ""
    options: Tuple[Option, ...] = ()

    def option_names(self) -> Tuple[str, ...]:
        return tuple(o.name for o in self.options)


class UnknownOptionError(UnknownNameError):
    """An option the entry does not declare: ``unknown option 'sed' for swapper 'blend'; did you mean 'seed'?``."""

    def __init__(self, kind: str, entry: str, option: str, declared: Iterable[str]):
        declared = sorted(declared)
        super().__init__("option", option, declared)
        close = difflib.get_close_matches(option, declared, n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        self.args = (f"unknown option '{option}' for {kind} '{entry}'{hint} (options: {', '.join(declared) or 'none'})",)


def explicit_weight(spec: Any, source: WeightSource, weights: WeightsArg) -> Optional[Union[str, os.PathLike]]:
    """The user's path for ``source``: a bare path, or a mapping keyed by the file's name (or the entry's name
    when it has one file)."""
    if weights is None:
        return None
    if isinstance(weights, Mapping):
        if source.filename in weights:
            return weights[source.filename]
        return weights.get(spec.name) if len(spec.weights) == 1 else None
    return weights


def resolve_spec_weights(spec: Any, weights: WeightsArg = None) -> Union[None, Path, Dict[str, Path]]:
    """Every weight file of ``spec`` resolved once: None (no file), the Path (one file) or {filename: Path}.

    All missing files are named in one :class:`~idbench.errors.WeightsNotFoundError` line (each says where it goes).
    """
    sources = tuple(getattr(spec, "weights", ()) or ())
    found: Dict[str, Path] = {}
    missing: List[str] = []
    for src in sources:
        try:
            found[src.filename] = resolve_weights(src, explicit_weight(spec, src, weights))
        except WeightsNotFoundError as e:
            missing.append(str(e))
    if missing:
        raise WeightsNotFoundError(missing[0] if len(missing) == 1 else
                                   f"{spec.name} misses {len(missing)} weight files: " + " | ".join(missing))
    if not sources:
        return None
    return found[sources[0].filename] if len(sources) == 1 else found


class Registry(Generic[S]):
    """Maps a name to ``(spec, factory)``.

    ``kind`` is used in error messages ("unknown encoder 'arcfce.r100'. Did you mean ...").
    ``modules`` are imported and every public module of ``packages`` (not in ``skip``, not ``_private``) is
    imported on the first lookup; then the entry points of ``group`` (default ``idbench.<kind>s``).
    Registering an existing name raises, so two files cannot silently shadow each other.
    """

    def __init__(self, kind: str, modules: Iterable[str] = (), packages: Iterable[str] = (),
                 skip: Iterable[str] = (), group: Optional[str] = None):
        self.kind = kind
        self.modules, self.packages, self.skip = tuple(modules), tuple(packages), tuple(skip)
        self.group = group if group is not None else f"idbench.{kind}s"
        self.import_errors: Dict[str, str] = {}  # module or ``plugin:NAME (VALUE)`` -> one-line reason
        self._entries: Dict[str, Tuple[S, Callable]] = {}
        self._defaults: Dict[str, str] = {}  # family tag -> its default entry (timm-style: arcface -> arcface.r100)
        self._loaded = False
        self._plugins_seen: set = set()

    # --- registration ------------------------------------------------------------------------------

    def register(self, name: str, spec: S) -> Callable[[F], F]:
        def deco(factory: F) -> F:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is already registered")
            self._entries[name] = (spec, factory)
            return factory

        return deco

    def add(self, name: str, spec: S, factory: Callable) -> None:
        self.register(name, spec)(factory)

    def remove(self, name: str) -> None:
        """Forget an entry (recipes and tests that register a temporary one)."""
        self._entries.pop(name, None)
        for family in [f for f, n in self._defaults.items() if n == name]:
            del self._defaults[family]

    def set_default(self, family: str, name: str) -> None:
        """``family`` (a name without a tag, e.g. ``arcface``) stands for ``name`` (``arcface.r100``)."""
        if family in self._entries:
            raise ValueError(f"{self.kind} '{family}' is an entry; it cannot also be a family tag")
        self._defaults[family] = name

    # --- lazy discovery ----------------------------------------------------------------------------

    def load(self) -> List[str]:
        """Import the registering modules and packages, then the plugins (once; a lookup calls it); returns
        the names of the plugins loaded."""
        if self._loaded:
            return []
        self._loaded = True  # before importing: a module that looks an entry up while loading must not recurse
        for module in self.modules:
            self._import(module)
        for package in self.packages:
            self.discover(package, self.skip)
        return self.load_plugins()

    def discover(self, package: str, skip: Iterable[str] = ()) -> None:
        """Import every public module of ``package`` (a new entry is one new file); failures are listed."""
        pkg = importlib.import_module(package)
        for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
            if not info.name.startswith("_") and info.name not in skip:
                self._import(f"{package}.{info.name}")

    def _import(self, module: str) -> None:
        try:
            importlib.import_module(module)
        except Exception as e:  # noqa: BLE001 - one broken module must not hide the others
            self._report(module, e)

    def load_plugins(self) -> List[str]:
        """Load the entry points of :attr:`group` not seen before; returns the names loaded.

        An entry point names a module (importing it registers its entries) or a callable (called with no
        arguments; it registers them). A broken one is listed in :attr:`import_errors`, the rest still load.
        """
        from importlib.metadata import entry_points

        loaded = []
        for ep in entry_points(group=self.group):
            key = f"{ep.name}={ep.value}"
            if key in self._plugins_seen:
                continue
            self._plugins_seen.add(key)
            try:
                obj = ep.load()
                if callable(obj):
                    obj()
            except Exception as e:  # noqa: BLE001 - a broken plugin is reported, the rest still load
                self._report(f"plugin:{ep.name} ({ep.value})", e)
                continue
            loaded.append(ep.name)
        return loaded

    def _report(self, where: str, e: BaseException) -> None:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        self.import_errors[where] = f"{type(e).__name__}: {first}"
        warnings.warn(f"idbench: {self.kind} module {where} failed to load ({self.import_errors[where]}); its "
                      f"{self.kind}s are not registered", RuntimeWarning, stacklevel=4)

    # --- lookup ------------------------------------------------------------------------------------

    def resolve(self, name: str) -> str:
        """The registered name ``name`` stands for: itself, or its family's default."""
        self.load()
        if name not in self._entries and name not in self._defaults:
            self.load_plugins()  # installed since the first lookup
        if name in self._entries:
            return name
        if name in self._defaults:
            return self._defaults[name]
        e = UnknownNameError(self.kind, name, [*self._entries, *self._defaults])
        if self.import_errors:  # the entry may live in a module that failed to load: say so
            broken = "; ".join(f"{m}: {r}" for m, r in self.import_errors.items())
            e.args = (f"{e.args[0]} (modules that failed to load: {broken})",)
        raise e

    def __contains__(self, name: str) -> bool:
        self.load()
        return name in self._entries or name in self._defaults

    def __iter__(self) -> Iterator[str]:
        self.load()
        return iter(sorted(self._entries))

    def spec(self, name: str) -> S:
        return self._lookup(name)[0]

    def factory(self, name: str) -> Callable:
        return self._lookup(name)[1]

    def _lookup(self, name: str) -> Tuple[S, Callable]:
        return self._entries[self.resolve(name)]

    def defaults(self) -> Dict[str, str]:
        """Family tag -> default entry."""
        self.load()
        return dict(self._defaults)

    def names(self, pattern: Optional[str] = None) -> List[str]:
        """Sorted names, optionally filtered: a pattern with ``*?[`` is an fnmatch pattern (``arcface.*``),
        any other text matches names that contain it, case-insensitively (``blendface``, ``r100``)."""
        self.load()
        names = sorted(self._entries)
        if pattern and any(c in pattern for c in "*?["):
            names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        elif pattern:
            names = [n for n in names if pattern.lower() in n.lower()]
        return names

    # --- building ----------------------------------------------------------------------------------

    def options(self, name: str, given: Mapping[str, Any]) -> Dict[str, Any]:
        """``given`` checked against the entry's declared options (did-you-mean on an unknown one), with the
        declared defaults filled in (an :data:`UNSET` default is left to the factory)."""
        spec = self.spec(name)
        declared = {o.name: o for o in getattr(spec, "options", ())}
        for key in given:
            if key not in declared:
                raise UnknownOptionError(self.kind, self.resolve(name), key, declared)
        values = {k: o.default for k, o in declared.items() if o.default is not UNSET}
        values.update(given)
        return values

    def create(self, name: str, weights: WeightsArg = None, device: str = "cpu", **options: Any) -> Any:
        """Build the entry ``name`` (or its family's default): ``factory(spec, weights, device, **options)``."""
        name = self.resolve(name)
        spec, factory = self._entries[name]
        values = self.options(name, options)  # an option typo fails before any file is looked for
        return factory(spec, resolve_spec_weights(spec, weights), device, **values)
