"""The swapper registry: ``blend`` (pseudo-swaps) and ``ffpp:<Method>`` (FaceForensics++'s own results).

>>> from idbench.swapper import create_swapper, list_swappers
>>> list_swappers()                      # ['blend', 'ffpp:DeepFakeDetection', ..., 'ffpp:NeuralTextures']
>>> sw = create_swapper("blend", seed=0, k=100, mode="crop")
>>> ff = create_swapper("ffpp:FaceShifter", root="/data/ffpp", compression="c23", frames=10)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional

from idbench.registry import Registry


@dataclass(frozen=True)
class SwapperSpec:
    name: str
    description: str
    kind: str  # "pseudo" (built here from real photos) or "dataset" (a method's published outputs)


SWAPPERS: Registry[SwapperSpec] = Registry("swapper")


def register_swapper(spec: SwapperSpec) -> Callable:
    """Decorator: ``factory(spec, **kw) -> swapper`` registered under ``spec.name``."""
    return SWAPPERS.register(spec.name, spec)


def create_swapper(name: str, **kw):
    """Build a registered swapper; keyword arguments go to its factory."""
    spec = SWAPPERS.spec(name)
    return SWAPPERS.factory(name)(spec, **kw)


def list_swappers(pattern: Optional[str] = None) -> List[str]:
    return SWAPPERS.names(pattern)


def get_spec(name: str) -> SwapperSpec:
    return SWAPPERS.spec(name)
