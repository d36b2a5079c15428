"""The estimator registry: :class:`EstimatorSpec`, :data:`ESTIMATORS`, ``create_estimator``.

A kind name (``pose``, ``gaze``, ``expression``, ``shape``) stands for the kind's default estimator.
The estimator modules register themselves when :mod:`idbench.analysis.estimators` is imported.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Tuple, Union

from idbench.registry import Option, Registry, Spec

if TYPE_CHECKING:
    from .base import Estimator

KINDS = ("pose", "gaze", "expression", "shape")
KIND_DEFAULTS = {"pose": "pose.pnp", "gaze": "gaze.iris", "expression": "expression.landmarks",
                 "shape": "shape.deep3d"}


@dataclass(frozen=True, init=False)
class EstimatorSpec(Spec):
    """What an estimator measures and gives back: ``EstimatorSpec(name, kind, description, columns, ...)``.

    Attributes:
        name: registry name, ``kind.method`` (``pose.pnp``).
        kind: ``pose`` | ``gaze`` | ``expression`` | ``shape``.
        description: one line for ``bench list estimators``.
        columns: names of the entries of each estimate, in order.
        weights, paper, licence, options: the shared :class:`~idbench.registry.Spec` fields.
        units: ``degrees`` or ``coefficients`` / ``IOD units``.
        conventions: where idbench's names, units or signs differ from the official code's output (shown by
            ``bench list estimators`` and in the README); "" when they agree.
        recipe: the official crop and preprocessing the estimator reproduces, in words.
    """

    kind: str = ""
    columns: Tuple[str, ...] = ()
    units: str = ""
    conventions: str = ""
    recipe: str = ""

    def __init__(self, name: str, kind: str, description: str, columns: Tuple[str, ...], **kw: Any):
        # the estimator modules write (name, kind, description, columns) positionally; the shared Spec puts
        # description second, so this spec keeps its own order
        given = {"name": name, "kind": kind, "description": description, "columns": tuple(columns), **kw}
        for f in fields(self):
            object.__setattr__(self, f.name, given.pop(f.name, f.default))
        if given:
            raise TypeError(f"EstimatorSpec got unknown fields {sorted(given)}")
        self.__post_init__()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind must be one of {KINDS}, got {self.kind!r}")
        if not self.columns:
            raise ValueError(f"{self.name}: an estimator needs named output columns")


#: the modules of this package register on the first lookup; plugins through ``idbench.estimators``
ESTIMATORS: Registry[EstimatorSpec] = Registry("estimator", packages=(__package__,), skip=("registry", "base"))

for _kind, _default in KIND_DEFAULTS.items():  # a kind stands for its default estimator (family tags)
    ESTIMATORS.set_default(_kind, _default)

#: the option of the estimators that read a checkpoint (idbench.checkpoints): pickled files need it
ALLOW_PICKLE = Option("allow_pickle", None, "True: read a pickled checkpoint (else IDBENCH_ALLOW_PICKLE decides)")
#: the option of the landmark-geometry estimators
FOCAL = Option("focal", None, "camera focal length in px (default: max(H, W) of the image)")


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
    return ESTIMATORS.create(resolve_name(name), weights, device, **options)
