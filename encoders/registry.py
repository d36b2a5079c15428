"""The encoder registry: ``@register_encoder(spec)`` on a factory, ``create_encoder(name)`` to build one.

A factory has the signature ``factory(spec, weights_path, device) -> Encoder`` where
``weights_path`` is the resolved path of ``spec.weights[0]`` (or ``None`` if the spec needs no
file). Adding an encoder to idbench is one file in ``encoders/`` (every module of the package is
imported); a third-party package registers its own through the ``idbench.encoders`` entry-point group
(see :func:`load_plugins`). ``create_encoder`` also takes the path of a contract file (``*.toml``,
:mod:`idbench.encoders.contract`).
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import re
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Union

from idbench.errors import IdbenchError, UnknownNameError
from idbench.registry import Registry
from idbench.weights import resolve_weights, weights_presence

from .base import Encoder
from .spec import EncoderSpec

ENCODERS: Registry[EncoderSpec] = Registry("encoder")

ENTRY_POINT_GROUP = "idbench.encoders"

#: modules (``idbench.encoders.X`` or ``plugin:NAME``) that failed to load, with the one-line reason
IMPORT_ERRORS: Dict[str, str] = {}

_LOADED_PLUGINS: set = set()


def register_encoder(spec: EncoderSpec) -> Callable:
    """Decorator: register ``factory(spec, weights_path, device)`` under ``spec.name``."""
    return ENCODERS.register(spec.name, spec)


def get_spec(name: str) -> EncoderSpec:
    return ENCODERS.spec(name)


def list_encoders(pattern: Optional[str] = None) -> List[str]:
    return ENCODERS.names(pattern)


def missing_weight_files(names: Sequence[str], weights: Optional[Mapping[str, str]] = None) -> List[str]:
    """One line per encoder of ``names`` whose weight file is found nowhere (and not given in ``weights``):
    the registered name, the file, where it goes, where it comes from and the ``--weights NAME=PATH`` form.
    Contract files are checked by their own reader."""
    from idbench.errors import WeightsNotFoundError
    from idbench.weights import idbench_home

    from .contract import is_contract_path

    weights = dict(weights or {})
    lines = []
    for n in names:
        if is_contract_path(n):
            continue
        spec = get_spec(str(n))
        if not spec.weights or weights.get(str(n)) or weights.get(spec.name):
            continue
        try:
            resolve_weights(spec.weights[0])
        except WeightsNotFoundError:
            src = spec.weights[0]
            lines.append(f"{spec.name} needs {src.filename}: put it in {idbench_home() / 'weights'}/ or pass "
                         f"--weights {n}=PATH (from {src.origin})")
    return lines


def weights_status(name: str) -> str:
    """'present', 'missing', 'corrupt' or 'none needed' (for ``bench list encoders``)."""
    return weights_presence(get_spec(name).weights)


def _report(where: str, e: BaseException) -> None:
    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    IMPORT_ERRORS[where] = f"{type(e).__name__}: {first}"
    warnings.warn(f"idbench: encoder module {where} failed to load ({IMPORT_ERRORS[where]}); its encoders are "
                  f"not registered", RuntimeWarning, stacklevel=3)


_REGISTERS = re.compile(r"\bregister_\w*encoder\b|\bENCODERS\b")


def _registers(module: str) -> bool:
    """Whether a module's source registers encoders (read as text, without importing it)."""
    spec = importlib.util.find_spec(module)
    try:
        return spec is not None and _REGISTERS.search(Path(spec.origin).read_text(encoding="utf-8")) is not None
    except (OSError, TypeError):
        return True  # cannot tell: import it (a failure is reported)


def discover_modules(package: str = __package__, skip: Sequence[str] = ("registry", "spec", "base", "pipeline")
                     ) -> None:
    """Import every module of the encoders package (so a new encoder is one new file).

    Only modules that register encoders (their source names ``register_encoder``, a ``register_*_encoder``
    helper or ``ENCODERS``) are imported: network
    modules (``iresnet``, ``dlib_resnet``...) import torch and are imported by the factories that build
    them, so listing the registry stays torch-free. Private modules (``_x.py``) are skipped; a module that fails to import is reported (a warning and
    :data:`IMPORT_ERRORS`, named again when an unknown encoder is asked for), never silently dropped.
    """
    pkg = importlib.import_module(package)
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name in skip or not _registers(f"{package}.{info.name}"):
            continue
        try:
            importlib.import_module(f"{package}.{info.name}")
        except Exception as e:  # noqa: BLE001 - one broken module must not hide the others
            _report(f"{package}.{info.name}", e)


def load_plugins(group: str = ENTRY_POINT_GROUP) -> List[str]:
    """Load the ``idbench.encoders`` entry points of installed distributions; returns the names loaded.

    An entry point names a module (importing it registers its encoders) or a callable (called with no
    arguments; it registers them). Calling again loads only entry points not seen before.
    """
    from importlib.metadata import entry_points

    loaded = []
    for ep in entry_points(group=group):
        key = f"{ep.name}={ep.value}"
        if key in _LOADED_PLUGINS:
            continue
        _LOADED_PLUGINS.add(key)
        try:
            obj = ep.load()
            if callable(obj):
                obj()
        except Exception as e:  # noqa: BLE001 - a broken plugin is reported, the rest still load
            _report(f"plugin:{ep.name} ({ep.value})", e)
            continue
        loaded.append(ep.name)
    return loaded


def create_encoder(name: Union[str, Path], weights: Optional[Union[str, Path]] = None, device: str = "cpu"
                   ) -> Encoder:
    """Build a registered encoder (or the one a ``.toml`` contract file describes), resolving its weights."""
    from .contract import create_contract_encoder, is_contract_path

    if is_contract_path(name):
        return create_contract_encoder(name, weights, device)
    name = str(name)
    if name not in ENCODERS:
        load_plugins()
    name = ENCODERS.resolve(name) if name in ENCODERS else name  # a family tag (`arcface`) -> its default
    try:
        spec = get_spec(name)
    except UnknownNameError as e:
        if IMPORT_ERRORS:  # the encoder may live in a module that failed to load: say so
            broken = "; ".join(f"{m}: {r}" for m, r in IMPORT_ERRORS.items())
            e.args = (f"{e.args[0]} (modules that failed to load: {broken})",)
        raise e from None
    path = resolve_weights(spec.weights[0], weights) if spec.weights else None
    enc = ENCODERS.factory(name)(spec, path, device)
    if enc.spec.name != spec.name:
        raise RuntimeError(f"factory for {name} returned an encoder for {enc.spec.name}")
    return enc


def create_encoders(names: Sequence[str], weights: Optional[Mapping[str, str]] = None, device: str = "cpu"
                    ) -> Dict[str, Encoder]:
    """Build several encoders, keyed by their leaderboard name (a contract's ``name``, not its path).

    ``weights`` maps an encoder, as given in ``names`` or by its leaderboard name, to an explicit weight file.
    """
    from .contract import is_contract_path, read_contract

    weights = dict(weights or {})
    out: Dict[str, Encoder] = {}
    for n in names:
        label = read_contract(n).name if is_contract_path(n) else str(n)
        path = weights.get(n, weights.get(label))
        enc = create_encoder(n, path, device)
        if enc.spec.name in out:
            raise IdbenchError(f"two encoders are named {enc.spec.name!r} ({n}); give each contract its own name")
        out[enc.spec.name] = enc
    return out
