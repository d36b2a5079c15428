"""The pair-at-a-time swapper contract: implement ``swap(source_image, source_face, target_image, target_face)``
and the pairs are planned, cached and reported for you, in ``bench run`` and in ``bench swap`` alike.
How to add one: ``docs/extending.md`` ("Add a swapper")."""

from __future__ import annotations

import os
from abc import abstractmethod
from functools import partial
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .checks import MIN_FACE_PX, check_landmarks, prepare_image, face_landmarks
from .partners import check_partner_rule, plan_partners
from .types import SWAP_VERSION, Failure, SwapContext, SwapError, SwapFailure, SwapItem, SwapOutput, Swapper, stem


class PairSwapper(Swapper):
    """A swapper that swaps one (source, target) pair at a time: implement :meth:`swap`.

    Planning (:meth:`partners`, the same in a run and in ``bench swap``): every usable face is a source,
    swapped onto its partner (:func:`~idbench.swapper.partners.plan_partners`, rule ``partner``, ``k``
    candidates, ``seed``). A face is usable when its 68 landmarks lie inside its image and span at least
    ``min_face`` px (:func:`~idbench.swapper.checks.check_landmarks`). The cache key of a swap is the content
    of its inputs (both images' keys, both face records) and :meth:`params`, so a rerun never rebuilds it.
    Outside a run (``bench swap``), :meth:`swap_batch` plans and swaps a list of images the same way.
    """

    min_face: float = MIN_FACE_PX  # px of 68-landmark extent a face needs to take part
    align_partners: bool = False  # compare landmarks in the ArcFace template frame (partners.normalise_landmarks)

    def __init__(self, partner: str = "nearest-landmark", k: int = 100, seed: int = 0):
        check_partner_rule(partner)  # an unknown rule fails here, before any work
        self.partner, self.k, self.seed = partner, int(k), int(seed)

    @abstractmethod
    def swap(self, source_image, source_face, target_image, target_face):
        """-> a :class:`~idbench.swapper.types.SwapResult` (``.image``: full frame RGB uint8); raise
        :class:`~idbench.swapper.types.SwapError` for a bad pair."""

    def params(self) -> Dict[str, object]:
        return {"partner": self.partner, "k": self.k, "seed": self.seed}

    # --- planning: one rule for bench run and bench swap --------------------------------------------
    def usable_face(self, face, shape: Tuple[int, int]) -> bool:
        """Whether ``face`` (in an image of ``shape`` H x W) may take part, as a source or a partner."""
        if face is None or face.landmarks68 is None:
            return False
        try:
            check_landmarks(face.landmarks68, shape, self.min_face)
        except SwapError:
            return False
        return True

    def usable(self, ctx: SwapContext) -> List[bool]:
        """The usable rows of a run (image sizes read from the files' headers, no pixels decoded)."""
        t = ctx.table
        return [self.usable_face(f, image_hw(t.item(r))) for r, f in enumerate(t.faces)]

    def partners(self, faces: Sequence, identities: Sequence,
                 usable: Optional[Sequence[bool]] = None) -> Tuple[np.ndarray, np.ndarray]:
        """(partner row, landmark distance) of every row; -1 where none (:func:`plan_partners`)."""
        return plan_partners(faces, identities, self.partner, self.k, self.seed, usable, align=self.align_partners)

    def plan(self, ctx: SwapContext) -> Tuple[List[SwapItem], List[Failure]]:
        from idbench.pipeline import failure

        t = ctx.table
        partner, _ = self.partners(t.faces, ctx.labels, self.usable(ctx))
        items, fails = [], []
        for r in range(len(t.faces)):
            name = f"{ctx.labels[r]}/{stem(t.paths[r])}->{ctx.labels[partner[r]]}/{stem(t.paths[partner[r]])}" \
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
        lm = face_landmarks(prepare_image(image), face, self.min_face)  # SwapError for a missing face, too
        return face.with_landmarks68(landmarks68=lm)

    def swap_batch(self, images: Sequence, faces: Sequence, identities: Sequence,
                   paths: Optional[Sequence] = None, anchors: Optional[Sequence[int]] = None) -> list:
        """Swap every anchor (default: every row; the source) onto its partner (the target); one
        :class:`~idbench.swapper.types.SwapResult` or ``SwapFailure`` per anchor, in order. The pairs are
        :meth:`partners` on the rows that pass :meth:`prepare_row` (a run's :meth:`plan`, on the same faces).

        ``images`` may hold arrays or paths (read when needed, so memory stays bounded).
        """
        from idbench.errors import InputError

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
        partner, dist = self.partners(usable, identities, [f is not None for f in usable])
        rows = range(n) if anchors is None else anchors
        return [self._anchor_swap(int(i), images, usable, identities, paths, partner, dist, problems) for i in rows]

    def _anchor_swap(self, i, images, usable, identities, paths, partner, dist, problems):
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


def image_hw(item) -> Tuple[int, int]:
    """(H, W) of a pipeline item's upright image: from its file's header when it is an image file (no
    pixels decoded), else from its pixels."""
    from idbench.imageio import _declared_size, exif_orientation, read_regular_file

    path = getattr(item, "path", None)
    if getattr(item, "_load", None) is None and path is not None and os.path.isfile(path):
        data = getattr(item, "_data", None) or read_regular_file(path)
        size = _declared_size(data, str(path))
        if size is not None:
            w, h = size
            return (w, h) if exif_orientation(data) in (5, 6, 7, 8) else (h, w)  # EXIF turns it upright
    return tuple(np.asarray(item.image).shape[:2])


def _swap_image(swapper: PairSwapper, s_item, s_face, t_item, t_face) -> np.ndarray:
    """One pair's swapped image (items read their file again where they arrive without pixels)."""
    return swapper.swap(s_item.image, s_face, t_item.image, t_face).image
