"""The encoder registry: ``@register_encoder(spec)`` on a factory, ``create_encoder(name)`` to build one.

A factory has the signature ``factory(spec, weights_path, device) -> Encoder`` where
``weights_path`` is the resolved path of ``spec.weights[0]`` (or ``None`` if the spec needs no
file). Adding an encoder is one file: define the spec, decorate the factory, import the module in
``idbench/encoders/__init__.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, List, Optional, Union

from idbench.registry import Registry
from idbench.weights import resolve_weights, weights_presence

from .base import Encoder
from .spec import EncoderSpec

ENCODERS: Registry[EncoderSpec] = Registry("encoder")


def register_encoder(spec: EncoderSpec) -> Callable:
    """Decorator: register ``factory(spec, weights_path, device)`` under ``spec.name``."""
    return ENCODERS.register(spec.name, spec)


def get_spec(name: str) -> EncoderSpec:
    return ENCODERS.spec(name)


def list_encoders(pattern: Optional[str] = None) -> List[str]:
    return ENCODERS.names(pattern)


def weights_status(name: str) -> str:
    """'present', 'missing', 'corrupt' or 'none needed' (for ``bench list encoders``)."""
    return weights_presence(get_spec(name).weights)


def create_encoder(name: str, weights: Optional[Union[str, Path]] = None, device: str = "cpu") -> Encoder:
    """Build a registered encoder, resolving its weight file (explicit path first)."""
    spec = get_spec(name)
    path = resolve_weights(spec.weights[0], weights) if spec.weights else None
    enc = ENCODERS.factory(name)(spec, path, device)
    if enc.spec.name != spec.name:
        raise RuntimeError(f"factory for {name} returned an encoder for {enc.spec.name}")
    return enc
