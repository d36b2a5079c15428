"""The swapper interface's types: what a swapper is given (:class:`SwapContext`), what it plans
(:class:`SwapItem`), what it yields (:class:`SwapOutput`, :class:`SwapResult` / :class:`SwapFailure`) and
the one per-item error (:class:`SwapError`). The pair-at-a-time contract is :class:`idbench.swapper.pair.PairSwapper`;
how to add a swapper: ``docs/extending.md`` ("Add a swapper").

Every swapper (``blend``, ``ffpp:<Method>``, ``results:DIR``, learned swappers) is a :class:`Swapper`
registered in :data:`idbench.swapper.SWAPPERS`. Given a :class:`SwapContext` (the run's dataset
faces: their pipeline items, identities, frame indices), a swapper

1. :meth:`Swapper.plan` s its :class:`SwapItem` s (source row / label, target row, a unique name) and
   lists what it could not plan (an unmatched pair, an unknown identity) as failures;
2. :meth:`Swapper.outputs` yields one :class:`SwapOutput` per item: a content key and a ``load()``
   that builds (or reads) the swapped RGB image only when the pipeline needs it, with provenance.
   A per-item failure (:class:`SwapError` from ``load()``, or an output with ``error`` set) is listed,
   never fatal.

The swapped image then goes through the same pipeline as any photo (:mod:`idbench.pipeline`): it is
re-detected once (no face = a listed failure, never scored at the target's face), aligned per
encoder, embedded in batches and cached by content.
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from idbench.errors import IdbenchError
from idbench.faces import Face

SWAP_VERSION = 2  # bump when a pseudo-swap's pixels change for the same inputs and parameters (2: faster colour transfer)

Failure = Dict[str, str]


class SwapError(IdbenchError, ValueError):
    """One pair could not be swapped; ``reason`` is a short, stable phrase (also in the message)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass
class SwapResult:
    """A swap. ``image``: uint8 RGB; ``mask``: float32 blend mask in [0, 1], same H x W."""

    image: np.ndarray
    mask: np.ndarray
    provenance: Dict[str, object] = field(default_factory=dict)
    face: Optional[Face] = None  # the target face in ``image``'s coordinates (align any encoder's crop with it)
    ok: bool = True

    @property
    def identity(self):
        return self.provenance.get("identity")


@dataclass
class SwapFailure:
    """A pair (or anchor) that could not be swapped, with the reason and what is known of it."""

    reason: str
    provenance: Dict[str, object] = field(default_factory=dict)
    ok: bool = False


@dataclass(frozen=True)
class SwapItem:
    """One planned swap: the source's identity onto the target face (rows of the run's table)."""

    target: int  # row of the target face
    source_label: str  # identity (FF++: video id) of the source
    name: str  # unique within the swapper (per-sample lists, failures)
    source: Optional[int] = None  # row of the source face when known (else the source's first face)
    frame: Optional[int] = None


@dataclass
class SwapOutput:
    """A planned swap's result: ``load()`` gives the RGB uint8 image (raises SwapError for a bad pair)."""

    item: SwapItem
    key: str
    load: Callable[[], np.ndarray]
    provenance: Dict[str, object] = field(default_factory=dict)


def close_names(name: str, names: Sequence[str]) -> str:
    """``"; did you mean a, b?"`` for the closest of ``names`` (difflib ratio >= 0.6), or ``""``."""
    hits = difflib.get_close_matches(name, sorted(set(str(n) for n in names)), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(hits)}?" if hits else ""


def stem(path: str) -> str:
    return Path(path).stem


@dataclass
class SwapContext:
    """What a swapper may use: the dataset faces of a run (``table`` rows) and its options."""

    table: object  # idbench.pipeline.EmbeddingTable of the dataset
    labels: np.ndarray  # identity per row
    frames: Sequence[Optional[int]] = ()  # frame index per row (videos), else None
    root: Optional[str] = None
    options: Dict[str, object] = field(default_factory=dict)

    def rows_of(self, label: str) -> np.ndarray:
        return np.flatnonzero(self.labels == label)

    def frame_row(self, label: str, frame: Optional[int]) -> Optional[int]:
        """The row of ``label`` whose frame index is nearest ``frame`` (its first row without frames)."""
        rows = self.rows_of(label)
        if not len(rows):
            return None
        if frame is None or not len(self.frames):
            return int(rows[0])
        return int(min(rows, key=lambda r: abs((self.frames[r] or 0) - frame)))

    def exact_row(self, label: str, image: Optional[str] = None,
                  frame: Optional[int] = None) -> Tuple[Optional[int], str]:
        """The one row a swap names, or (None, why): never a silent choice among several faces.

        ``image``: the file stem of one of ``label``'s images (``ben_affleck@03``); ``frame``: a video
        frame index (FF++: the video's frame with that index). With neither, ``label`` must have one face.
        """
        rows = self.rows_of(label)
        if not len(rows):
            return None, f"no dataset identity {label!r}{close_names(label, self.labels)}"
        if image is not None:
            hits = [int(r) for r in rows if stem(self.table.paths[r]) == image]
            if len(hits) == 1:
                return hits[0], ""
            return None, (f"{label!r} has no image named {image!r} with a face" if not hits
                          else f"{label!r} has {len(hits)} images named {image!r}: name the file in a manifest")
        if frame is not None and len(self.frames) and self.frames[rows[0]] is not None:
            hits = [int(r) for r in rows if self.frames[r] == frame]
            if hits:
                return hits[0], ""
            return None, f"{label!r} has no frame {frame} among the run's frames (use the same --frames)"
        if len(rows) == 1:
            return int(rows[0]), ""
        return None, (f"ambiguous: {label!r} has {len(rows)} faces and the name does not say which; name the "
                      f"image ('{label}@<image name>') or use manifest.csv (source_path,target_path,output_path)")


class Swapper(ABC):
    """Plan swaps over a run's dataset, then yield their outputs (see the module docstring)."""

    name: str = "swapper"
    # a recipe without models or state (the pseudo-swaps): its uncached swaps are built in worker processes
    build_in_workers: bool = False

    def params(self) -> Dict[str, object]:
        """The parameters that change the swaps (recorded in ``results["swappers"][name]["params"]``)."""
        return {}

    def provenance(self) -> Dict[str, object]:
        """What the swapper records about itself besides :meth:`params` (e.g. weight files and their sha256)."""
        return {}

    @abstractmethod
    def plan(self, ctx: SwapContext) -> Tuple[List[SwapItem], List[Failure]]:
        """The items to swap, and one failure per item that could not be planned."""

    @abstractmethod
    def outputs(self, items: Sequence[SwapItem], ctx: SwapContext) -> Iterator[SwapOutput]:
        """One output per planned item, in order (lazily built)."""
