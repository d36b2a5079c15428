"""The encoder registry: ``@register_encoder(spec)`` on a factory, ``create_encoder(name)`` to build one.

A factory has the one signature of :mod:`idbench.registry`: ``factory(spec, weights_path, device, **options)``
where ``weights_path`` is the resolved path of the spec's weight file (or ``None`` if the spec needs no file).
Adding an encoder to idbench is one file in ``encoders/``: the public modules of the package are imported on
the first lookup (network-only modules, which import torch, are skipped and imported by the factories that
build them); a third-party package registers its own through the ``idbench.encoders`` entry-point group.
``create_encoder`` also takes the path of a contract file (``*.toml``, :mod:`idbench.encoders.contract`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Union

from idbench.errors import IdbenchError
from idbench.registry import Registry
from idbench.weights import resolve_weights, weights_presence

from .base import Encoder
from .spec import EncoderSpec

#: modules of the package that only hold networks or shared code: no registrations, imported where needed
NOT_REGISTERING = ("registry", "spec", "base", "pipeline", "contract", "iresnet", "irse", "dlib_resnet",
                   "sphere20a_net", "frozen_bn", "onnx_torch", "torchscript_backend", "onnx_backend")

ENCODERS: Registry[EncoderSpec] = Registry("encoder", packages=(__package__,), skip=NOT_REGISTERING)

ENTRY_POINT_GROUP = ENCODERS.group

#: modules (``idbench.encoders.X`` or ``plugin:NAME``) that failed to load, with the one-line reason
IMPORT_ERRORS: Dict[str, str] = ENCODERS.import_errors


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
        if weights.get(str(n)) or weights.get(spec.name):
            continue  # the user's file, checked when the encoder is built
        for src in spec.weights:  # every file of the entry, as Registry.create resolves them
            try:
                resolve_weights(src)
            except WeightsNotFoundError:
                lines.append(f"{spec.name} needs {src.filename}: put it in {idbench_home() / 'weights'}/ or pass "
                             f"--weights {n}=PATH (from {src.origin})")
    return lines


def weights_status(name: str) -> str:
    """'present', 'missing', 'corrupt' or 'none needed' (for ``bench list encoders``)."""
    return weights_presence(get_spec(name).weights)


def discover_modules(package: str = __package__, skip: Sequence[str] = NOT_REGISTERING) -> None:
    """Import every public module of ``package`` not in ``skip`` (failures listed in :data:`IMPORT_ERRORS`)."""
    ENCODERS.discover(package, skip)


def load_plugins(group: Optional[str] = None) -> List[str]:
    """Load the ``idbench.encoders`` entry points not seen before; returns the names loaded (a broken one is
    listed in :data:`IMPORT_ERRORS`)."""
    if group is not None and group != ENCODERS.group:
        raise ValueError(f"the encoder registry loads the {ENCODERS.group} group, not {group}")
    return ENCODERS.load() + ENCODERS.load_plugins()


def create_encoder(name: Union[str, Path], weights: Optional[Union[str, Path]] = None, device: str = "cpu"
                   ) -> Encoder:
    """Build a registered encoder (or the one a ``.toml`` contract file describes), resolving its weights."""
    from .contract import create_contract_encoder, is_contract_path

    if is_contract_path(name):
        return create_contract_encoder(name, weights, device)
    enc = ENCODERS.create(str(name), weights, device)
    spec = get_spec(str(name))
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
