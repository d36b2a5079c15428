"""The estimator registry: :class:`EstimatorSpec`, :data:`ESTIMATORS`, ``create_estimator``.

A kind name (``pose``, ``gaze``, ``expression``, ``shape``) stands for the kind's default estimator.
The estimator modules register themselves when :mod:`idbench.analysis.estimators` is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, List, Optional, Tuple, Union

from idbench.registry import Registry
from idbench.weights import WeightSource, resolve_weights

if TYPE_CHECKING:
    from .base import Estimator

KINDS = ("pose", "gaze", "expression", "shape")
KIND_DEFAULTS = {"pose": "pose.pnp", "gaze": "gaze.iris", "expression": "expression.landmarks",
                 "shape": "shape.deep3d"}


@dataclass(frozen=True)
class EstimatorSpec:
    """What an estimator measures and gives back.

    Attributes:
        name: registry name, ``kind.method`` (``pose.pnp``).
        kind: ``pose`` | ``gaze`` | ``expression`` | ``shape``.
        description: one line for ``bench list estimators``.
        columns: names of the entries of each estimate, in order.
        weights: the weight file(s); empty when none is needed.
        units: ``degrees`` or ``coefficients`` / ``IOD units``.
        paper, licence: provenance.
        conventions: where idbench's names, units or signs differ from the official code's output (shown by
            ``bench list estimators`` and in the README); "" when they agree.
        recipe: the official crop and preprocessing the estimator reproduces, in words.
    """

    name: str
    kind: str
    description: str
    columns: Tuple[str, ...]
    weights: Tuple[WeightSource, ...] = ()
    units: str = ""
    paper: str = ""
    licence: str = ""
    conventions: str = ""
    recipe: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind must be one of {KINDS}, got {self.kind!r}")
        if not self.columns:
            raise ValueError(f"{self.name}: an estimator needs named output columns")


ESTIMATORS: Registry[EstimatorSpec] = Registry("estimator")


def register_estimator(spec: EstimatorSpec) -> Callable:
    """Decorator: register ``factory(spec, weights_path, device, **options) -> Estimator``."""
    return ESTIMATORS.register(spec.name, spec)


def resolve_name(name: str) -> str:
    """A kind (``pose``) stands for its default estimator (``pose.pnp``)."""
    return KIND_DEFAULTS.get(name, name)


def get_spec(name: str) -> EstimatorSpec:
    return ESTIMATORS.spec(resolve_name(name))


def list_estimators(pattern: Optional[str] = None, kind: Optional[str] = None) -> List[str]:
    names = ESTIMATORS.names(pattern)
    return [n for n in names if kind is None or ESTIMATORS.spec(n).kind == kind]


def weights_status(name: str) -> str:
    """'present', 'missing', 'corrupt' or 'none needed'."""
    from idbench.weights import weights_presence

    return weights_presence(get_spec(name).weights)


def create_estimator(name: str, weights: Optional[Union[str, Path]] = None, device: str = "cpu",
                     **options) -> Estimator:
    """Build a registered estimator (a kind name gives its default); resolves the weight file first.

    Missing weights raise :class:`~idbench.errors.WeightsNotFoundError` (naming every place looked
    in), unreadable or wrong files :class:`~idbench.errors.WeightsFormatError`.
    """
    name = resolve_name(name)
    spec = ESTIMATORS.spec(name)
    path = resolve_weights(spec.weights[0], weights) if spec.weights else None
    return ESTIMATORS.factory(name)(spec, path, device, **options)
