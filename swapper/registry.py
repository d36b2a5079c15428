"""The swapper registry: ``blend`` (pseudo-swaps), ``ffpp:<Method>`` (FaceForensics++'s own results),
``results`` (any method's outputs in a folder: ``results:DIR``) and the learned swappers (``inswapper``,
``blendswap``, ``simswap``: :mod:`idbench.swapper.learned`).

>>> from idbench.swapper import create_swapper, list_swappers, parse_swapper
>>> list_swappers()                      # ['blend', 'ffpp:DeepFakeDetection', ..., 'results']
>>> sw = create_swapper("blend", seed=0, k=100, mode="crop")
>>> ff = create_swapper("ffpp:FaceShifter", root="/data/ffpp", compression="c23", frames=10)
>>> parse_swapper("results:/data/my_method")   # ('results', {'directory': '/data/my_method'})
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from idbench.registry import UNSET, Option, Registry, Spec


@dataclass(frozen=True)
class SwapperSpec(Spec):
    """The shared :class:`~idbench.registry.Spec` (weights, licence, paper, options keyword-only) and:

    ``params``: (parameter, what it means) for ``bench list swappers``; derived from ``options`` when not
    given (and options with the factory's own defaults are derived from ``params`` when only those are given).
    """

    description: str = field()  # positional, second (the shared Spec has it keyword-only)
    kind: str  # "pseudo" (built here from real photos), "dataset" (a method's published outputs), "learned"
    params: Tuple[Tuple[str, str], ...] = ()  # (parameter, what it means / its default), for `bench list swappers`
    arg: Optional[str] = None  # a swapper written NAME:VALUE passes VALUE as this keyword (results:DIR)

    def __post_init__(self) -> None:
        if self.params and not self.options:
            object.__setattr__(self, "options", tuple(Option(p, UNSET, d) for p, d in self.params))
        elif self.options and not self.params:
            object.__setattr__(self, "params", tuple((o.name, o.help) for o in self.options))


#: the modules of the package register on the first lookup; plugins through ``idbench.swappers``
SWAPPERS: Registry[SwapperSpec] = Registry("swapper", packages=(__package__,))


def register_swapper(spec: SwapperSpec) -> Callable:
    """Decorator: ``factory(spec, weights, device, **options) -> Swapper`` registered under ``spec.name``."""
    return SWAPPERS.register(spec.name, spec)


def parse_swapper(text: str) -> Tuple[str, Dict[str, str]]:
    """A ``--swappers`` entry -> (registered name, keyword arguments); unknown names raise with suggestions.

    A registered name is used as is (``blend``, ``ffpp:FaceShifter``); otherwise ``NAME:VALUE`` passes
    VALUE to the swapper registered as NAME that takes an argument (``results:DIR``).
    """
    if text in SWAPPERS:
        return text, {}
    head, sep, value = text.partition(":")
    if sep and head in SWAPPERS and SWAPPERS.spec(head).arg:
        return head, {SWAPPERS.spec(head).arg: value}
    SWAPPERS.spec(text)  # raises UnknownNameError with close matches
    raise AssertionError("unreachable")


def create_swapper(name: str, weights=None, device: str = "cpu", **options):
    """Build a registered swapper (``NAME:VALUE`` forms accepted): :meth:`SWAPPERS.create <Registry.create>`."""
    reg, extra = parse_swapper(name)
    return SWAPPERS.create(reg, weights, device, **{**options, **extra})


def list_swappers(pattern: Optional[str] = None) -> List[str]:
    return SWAPPERS.names(pattern)


def get_spec(name: str) -> SwapperSpec:
    return SWAPPERS.spec(parse_swapper(name)[0])
