"""The learned swappers behind the one Swapper interface (:mod:`idbench.swapper.base`), with the swap protocols.

* FaceForensics++ (the run's ``video_pairs``, i.e. the official split's pairs): FaceShifter's pairing. Every
  split pair ``(a, b)`` gives the manipulations ``a_b`` and ``b_a`` (``<target>_<source>``). Each evaluated
  frame of the target video is swapped with the source video's frame of the nearest index (the source
  identity as it moves, as FF++'s own methods swap frame by frame).
* Folder datasets: seeded pairs, planned as the pseudo-swap's (``partner`` = ``nearest-landmark`` among
  ``k`` random faces of other identities, or ``random``; ``seed``).

A pair whose target or source video has no face in the run is listed as a failure, never dropped silently.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

from idbench.swapper.pair import PairSwapper
from idbench.swapper.types import Failure, SwapContext, SwapItem

from ._base import LearnedSwapper


def ffpp_items(ctx: SwapContext, pairs: Sequence[Tuple[str, str]]) -> Tuple[List[SwapItem], List[Failure]]:
    """One item per evaluated target frame of every ``<target>_<source>`` of the split (both directions)."""
    from idbench.pipeline import failure

    known = set(str(x) for x in ctx.labels.tolist())
    items, fails = [], []
    for a, b in pairs:
        for t, s in ((str(a), str(b)), (str(b), str(a))):
            missing = [f"{w} {v}" for w, v in (("target", t), ("source", s)) if v not in known]
            if missing:
                fails.append(failure("swap-plan", f"{t}_{s}", f"unmatched pair: {' and '.join(missing)} not among "
                                     f"the run's videos (no frame with a face)"))
                continue
            for r in ctx.rows_of(t):
                frame = ctx.frames[r] if len(ctx.frames) else None
                src = ctx.frame_row(s, frame)
                name = f"{t}_{s}#{frame}" if frame is not None else f"{t}_{s}#{r}"
                items.append(SwapItem(int(r), s, name, source=src, frame=frame))
    return items, fails


class LearnedPairSwapper(PairSwapper):
    """A :class:`LearnedSwapper` as a pair swapper: FF++ split pairs when the run has them, else seeded pairs."""

    def __init__(self, model: LearnedSwapper, partner: str = "nearest-landmark", k: int = 100, seed: int = 0):
        super().__init__(partner=partner, k=k, seed=seed)
        self.model = model  # the loaded network(s), crops and paste-back
        self.spec = model.spec  # the typed LearnedSwapperSpec
        self.name = model.spec.name

    def swap(self, source_image, source_face, target_image, target_face):
        """One pair, the full target frame with the swapped face pasted back (raises ``SwapError``)."""
        return self.model.swap(source_image, source_face, target_image, target_face)

    def params(self) -> Dict[str, object]:
        return {**super().params(), **self.model.params()}

    def provenance(self) -> Dict[str, object]:
        return self.model.provenance()

    def plan(self, ctx: SwapContext) -> Tuple[List[SwapItem], List[Failure]]:
        pairs = ctx.options.get("video_pairs") if ctx.options else None
        if pairs:
            return ffpp_items(ctx, pairs)
        return super().plan(ctx)
