"""``saliency``: occlusion saliency of each encoder on a few seeded faces (maps cached by content) and the share
of its energy inside ``--saliency-region`` (:func:`idbench.analysis.saliency_inner_ratio`). Runs in every
``bench run``; ``--saliency-faces 0`` turns it off (the entry is then ``null``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from .base import StepResult, StepSpec, register_step


@dataclass
class SaliencyResult(StepResult):
    """``saliency``: :func:`idbench.analysis.saliency.encoder_saliency_summary` + the faces' captions, or None."""

    saliency: Optional[Dict[str, Any]] = field(default=None, metadata={"keep_none": True})


class _Lazy:
    """An item's image, decoded only if asked for (a cached saliency map needs only the crop)."""

    def __init__(self, item):
        self.item = item

    def __call__(self) -> np.ndarray:
        return self.item.image


def saliency_summary(cfg, enc, name: str, table, out_dir: Path, cache, labels=None) -> Optional[dict]:
    """Occlusion saliency on ``cfg.saliency_faces`` seeded faces; ratio inside ``cfg.saliency_region``."""
    from idbench.cache import content_key
    from idbench.pipeline import encoder_fingerprint

    if cfg.saliency_faces <= 0:
        return None
    try:
        from idbench.analysis.saliency import encoder_saliency_summary
    except ImportError:
        return None
    n = min(cfg.saliency_faces, len(table.paths))
    picks = np.random.default_rng(cfg.seed).choice(len(table.paths), n, replace=False) if n else []
    fp = content_key(encoder_fingerprint(enc))
    items = [(table.item(r), table.faces[r]) for r in picks]
    keys = [content_key("saliency", fp, it.key, np.round(f.box, 1).tolist()) for it, f in items]
    summary = encoder_saliency_summary(enc, [(_Lazy(it), f) for it, f in items], Path(out_dir) / "saliency" /
                                       name.replace("/", "_"), region=cfg.saliency_region, cache=cache, keys=keys,
                                       progress=cfg.progress)
    summary["faces"] = [{"image": str(table.paths[r]), "identity": None if labels is None else str(labels[r])}
                        for r in picks]  # captions of the report's saliency section
    return summary


@register_step(StepSpec("saliency", "occlusion saliency: share of an encoder's saliency inside a face region",
                        SaliencyResult, columns=("saliency_inner_ratio",), section="saliency",
                        always="--saliency-faces, 0: off", order=40))
def run(ctx) -> SaliencyResult:
    return SaliencyResult(saliency_summary(ctx.cfg, ctx.encoders[ctx.encoder], ctx.encoder, ctx.table, ctx.out_dir,
                                           ctx.cache, ctx.labels))
