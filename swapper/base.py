"""The one Swapper interface: a plan of (source, target) items in, swapped images out.

Every swapper (``blend``, ``ffpp:<Method>``, ``results:DIR``, learned swappers) is a :class:`Swapper`
registered in :data:`idbench.swapper.SWAPPERS`. Given a :class:`SwapContext` (the run's dataset
faces: their pipeline items, identities, frame indices), a swapper

1. :meth:`Swapper.plan` s its :class:`SwapItem` s (source row / label, target row, a unique name) and
   lists what it could not plan (an unmatched pair, an unknown identity) as failures;
2. :meth:`Swapper.outputs` yields one :class:`SwapOutput` per item: a content key and a ``load()``
   that builds (or reads) the swapped RGB image only when the pipeline needs it, with provenance.
   A per-item failure (:class:`~idbench.swapper.blend.SwapError` from ``load()``, or an output
   with ``error`` set) is listed, never fatal.

The swapped image then goes through the same pipeline as any photo (:mod:`idbench.pipeline`): it is
re-detected once (no face = a listed failure, never scored at the target's face), aligned per
encoder, embedded in batches and cached by content.

**Adding a learned swapper.** A class with ``swap(source_image, source_face, target_image,
target_face) -> SwapResult`` (full frame, pasted back; raise ``SwapError`` for one bad pair) slots in
with no other code: subclass :class:`PairSwapper` (implement ``swap``, set ``name``, optionally
``params()``), or wrap an existing object with ``PairSwapper.wrap(obj, name)``, and register a factory::

    @register_swapper(SwapperSpec("myswap", "My swapper", "learned", params=PAIR_PARAMS))
    def _make(spec, weights, device, seed=0, k=100, partner="nearest-landmark"):  # the registries' one signature
        return PairSwapper.wrap(MySwap(...), "myswap", seed=seed, k=k, partner=partner)

Its pairs are planned like the pseudo-swap's (``partner`` = ``nearest-landmark`` among ``k``
random faces of other identities, or ``random``; seeded), in a run (:meth:`PairSwapper.plan`) and in
``bench swap`` (:meth:`PairSwapper.swap_batch`). The built-in ``inswapper``, ``blendswap`` and ``simswap``
are :class:`idbench.swapper.learned.protocol.LearnedPairSwapper` s, which plan FF++'s split pairs
(``<target>_<source>``) when the run has them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

SWAP_VERSION = 2  # bump when a pseudo-swap's pixels change for the same inputs and parameters (2: faster colour transfer)
PARTNERS = ("nearest-landmark", "random")


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
        from .results import close_names

        rows = self.rows_of(label)
        if not len(rows):
            return None, f"no dataset identity {label!r}{close_names(label, self.labels)}"
        if image is not None:
            hits = [int(r) for r in rows if _stem(self.table.paths[r]) == image]
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


Failure = Dict[str, str]


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


def plan_partners(faces: Sequence, identities: Sequence, partner: str = "nearest-landmark", k: int = 100,
                  seed: int = 0, usable: Optional[Sequence[bool]] = None,
                  align: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """The one partner choice of every pair-swap: for each row, a row of another identity (-1: none).

    ``nearest-landmark``: nearest normalised 68 landmarks among ``k`` seeded random candidates
    (:func:`idbench.swapper.blend.choose_partners`); ``random``: one seeded random row of another
    identity. Rows not ``usable`` (or without 68 landmarks) are neither planned nor partners.
    Returns ``(partner, landmark distance)``.
    """
    from idbench.errors import InputError

    from .blend import choose_partners

    if partner not in PARTNERS:
        raise InputError(f"unknown partner rule {partner!r}: use {' or '.join(PARTNERS)}")
    n = len(faces)
    ok = [i for i in range(n) if faces[i] is not None and getattr(faces[i], "landmarks68", None) is not None
          and (usable is None or usable[i])]
    out, dist = np.full(n, -1, np.int64), np.full(n, np.inf)
    if not ok:
        return out, dist
    okarr = np.asarray(ok)
    ids = np.asarray([str(identities[i]) for i in ok])
    if partner == "nearest-landmark":
        lm = np.stack([np.asarray(faces[i].landmarks68, np.float64) for i in ok])
        p, d = choose_partners(lm, ids, k, seed, align)
        out[okarr] = np.where(p >= 0, okarr[np.maximum(p, 0)], -1)
        dist[okarr] = d
        return out, dist
    other = random_other(ids, seed)
    out[okarr] = np.where(other >= 0, okarr[np.maximum(other, 0)], -1)
    return out, dist


def random_other(ids: np.ndarray, seed: int = 0) -> np.ndarray:
    """For each row j, the row ``default_rng(seed).choice(rows not of ids[j])`` drawn in row order (the u-th
    such row is found by a search over ids[j]'s sorted rows: O(N log N), no N x N comparison); -1 where none."""
    rng = np.random.default_rng(seed)
    _, inv, counts = np.unique(ids, return_inverse=True, return_counts=True)
    inv = inv.reshape(-1)
    order = np.argsort(inv, kind="stable")
    start = np.r_[0, np.cumsum(counts)]
    d = order - (np.arange(len(ids)) - start[inv[order]])  # r_b - b over each identity's rows: non-decreasing
    key = inv[order] * (2 * len(ids) + 1) + d
    out = np.full(len(ids), -1, np.int64)
    for j in range(len(ids)):
        pool = len(ids) - counts[inv[j]]
        if pool:
            u = int(rng.integers(0, pool))  # = rng.choice(others): the same draw
            out[j] = u + np.searchsorted(key, inv[j] * (2 * len(ids) + 1) + u, side="right") - start[inv[j]]
    return out


class PairSwapper(Swapper):
    """A swapper that swaps one (source, target) pair at a time: implement :meth:`swap`.

    Planning: every usable row is a source, swapped onto its partner (:func:`plan_partners`, rule
    ``partner``, ``k`` candidates, ``seed``). The cache key of a swap is the content of its inputs
    (both images' keys, both face records) and :meth:`params`, so a rerun never rebuilds it.
    Outside a run (``bench swap``), :meth:`swap_batch` plans and swaps a list of images the same way.
    """

    min_face: float = 32.0  # px of 68-landmark extent a face needs to take part (blend.MIN_FACE_PX)

    def __init__(self, partner: str = "nearest-landmark", k: int = 100, seed: int = 0):
        self.partner, self.k, self.seed = partner, int(k), int(seed)

    @abstractmethod
    def swap(self, source_image, source_face, target_image, target_face):
        """-> an object with ``.image`` (full frame RGB uint8); raise ``SwapError`` for a bad pair."""

    def params(self) -> Dict[str, object]:
        return {"partner": self.partner, "k": self.k, "seed": self.seed}

    def usable(self, ctx: SwapContext) -> Optional[List[bool]]:
        """Rows that may take part (default: all with 68 landmarks)."""
        return None

    def partners(self, faces: Sequence, identities: Sequence) -> Tuple[np.ndarray, np.ndarray]:
        """(partner row, landmark distance) of every row; -1 where none (:func:`plan_partners`)."""
        return plan_partners(faces, identities, self.partner, self.k, self.seed)

    def plan(self, ctx: SwapContext) -> Tuple[List[SwapItem], List[Failure]]:
        from idbench.pipeline import failure

        t = ctx.table
        partner, _ = plan_partners(t.faces, ctx.labels, self.partner, self.k, self.seed, self.usable(ctx))
        items, fails = [], []
        for r in range(len(t.faces)):
            name = f"{ctx.labels[r]}/{_stem(t.paths[r])}->{ctx.labels[partner[r]]}/{_stem(t.paths[partner[r]])}" \
                if partner[r] >= 0 else t.paths[r]
            if partner[r] < 0:
                fails.append(failure("swap-plan", name, "no partner: no usable face of another identity"))
                continue
            items.append(SwapItem(int(partner[r]), str(ctx.labels[r]), name, source=r))
        return items, fails

    def outputs(self, items: Sequence[SwapItem], ctx: SwapContext) -> Iterator[SwapOutput]:
        from idbench.cache import content_key

        t, params = ctx.table, self.params()
        for it in items:
            s_item, t_item = t.item(it.source), t.item(it.target)
            s_face, t_face = t.faces[it.source], t.faces[it.target]
            key = content_key("swap", SWAP_VERSION, self.name, params, s_item.key, t_item.key,
                              s_face.to_dict(), t_face.to_dict())
            load = partial(_swap_image, self, s_item, s_face, t_item, t_face)  # picklable: built in workers
            yield SwapOutput(it, key, load, {"swapper": self.name, "source_path": t.paths[it.source],
                                             "target_path": t.paths[it.target], **params})

    # --- outside a run: a list of images (bench swap) ---------------------------------------------
    def prepare_row(self, image, face):
        """The face of one row after the per-row checks (image readable, 68 landmarks inside it, at least
        ``min_face`` px); raises ``SwapError``. A row that fails is neither swapped nor a partner."""
        from .blend import _with_lm68, face_landmarks, prepare_image

        return _with_lm68(face, face_landmarks(prepare_image(image), face, self.min_face))

    def swap_batch(self, images: Sequence, faces: Sequence, identities: Sequence,
                   paths: Optional[Sequence] = None, anchors: Optional[Sequence[int]] = None) -> list:
        """Swap every anchor (default: every row; the source) onto its partner (the target); one
        :class:`~idbench.swapper.blend.SwapResult` or ``SwapFailure`` per anchor, in order.

        ``images`` may hold arrays or paths (read when needed, so memory stays bounded).
        """
        import os

        from idbench.errors import InputError

        from .blend import SwapError

        n = len(faces)
        if len(images) != n or len(identities) != n:
            raise InputError(f"images ({len(images)}), faces ({n}) and identities ({len(identities)}) differ in length")
        paths = [str(p) for p in paths] if paths is not None else [
            str(im) if isinstance(im, (str, os.PathLike)) else f"#{i}" for i, im in enumerate(images)]
        usable, problems = [], {}
        for i in range(n):
            try:
                usable.append(self.prepare_row(images[i], faces[i]))
            except SwapError as e:
                usable.append(None)
                problems[i] = str(e)
        partner, dist = self.partners(usable, identities)
        rows = range(n) if anchors is None else anchors
        return [self._anchor_swap(int(i), images, usable, identities, paths, partner, dist, problems) for i in rows]

    def _anchor_swap(self, i, images, usable, identities, paths, partner, dist, problems):
        from .blend import SwapFailure

        prov = {"swapper": self.name, **self.params(), "source_index": i, "source_id": str(identities[i]),
                "source_path": paths[i], "identity": str(identities[i])}
        if i in problems:
            return SwapFailure(f"source: {problems[i]}", prov)
        j = int(partner[i])
        if j < 0:
            return SwapFailure("no partner: no usable image of another identity", prov)
        prov.update({"target_index": j, "target_id": str(identities[j]), "target_path": paths[j],
                     "landmark_distance": float(dist[i])})
        # anchor = source, partner = target (the paper's "anchor"/"partner" names kept as aliases)
        prov.update({"anchor_id": prov["source_id"], "anchor_path": paths[i],
                     "partner_id": prov["target_id"], "partner_path": paths[j]})
        return self.swap_pair(images[i], usable[i], images[j], usable[j], provenance=prov)

    def swap_pair(self, source_image, source_face, target_image, target_face, provenance: Optional[dict] = None):
        """Like :meth:`swap` (images may be paths) but returns a ``SwapFailure`` instead of raising for bad input."""
        from .blend import SwapError, SwapFailure, prepare_image

        try:
            res = self.swap(prepare_image(source_image), source_face, prepare_image(target_image), target_face)
        except SwapError as e:
            return SwapFailure(str(e), dict(provenance or {}))
        res.provenance = {**(provenance or {}), **(res.provenance or {})}
        return res

    @staticmethod
    def wrap(obj, name: str, **kw) -> "PairSwapper":
        """Any object with ``swap(source_image, source_face, target_image, target_face)`` as a PairSwapper."""
        return _Wrapped(obj, name, **kw)


class _Wrapped(PairSwapper):
    def __init__(self, obj, name: str, **kw):
        super().__init__(**kw)
        self.obj, self.name = obj, name

    def swap(self, source_image, source_face, target_image, target_face):
        return self.obj.swap(source_image, source_face, target_image, target_face)

    def params(self) -> Dict[str, object]:
        own = getattr(self.obj, "params", None)
        return {**super().params(), **(own() if callable(own) else {})}


def _swap_image(swapper: "PairSwapper", s_item, s_face, t_item, t_face) -> np.ndarray:
    """One pair's swapped image (items read their file again where they arrive without pixels)."""
    return swapper.swap(s_item.image, s_face, t_item.image, t_face).image


def _stem(path: str) -> str:
    from pathlib import Path

    return Path(path).stem
